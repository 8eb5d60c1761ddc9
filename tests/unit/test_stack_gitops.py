"""The GitOps layout: deterministic, one source of truth with the bundles, layered so
that Flux never applies an object before what it needs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml
from invoke.context import Context
from invoke.exceptions import Exit
from platform_ctx import variant

import tasks.gitops as gitops_task
from tasks.engine.errors import UserError
from tasks.model.model import SPEC_AGE_RECIPIENT
from tasks.repo import REPO_ROOT
from tasks.stack import gitops, sops
from tasks.stack.components import cert_manager, flux, k3s, render_all, traefik
from tasks.stack.render import Bundle, Document, Release

CTX = variant()
ROOT = "clusters/vps"
CRD_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas" / "crds"


def platform(ctx: dict[str, Any] | None = None) -> dict[str, Bundle]:
    """This helper's components only: independent of the other components' progress."""
    ctx = ctx or CTX
    return {m.NAME: m.render(ctx) for m in (k3s, traefik, cert_manager, flux)}


def build(bundles: dict[str, Bundle] | None = None, ctx: dict[str, Any] | None = None,
          secrets_dir: Path | None = None) -> gitops.Layout:
    ctx = ctx or CTX
    return gitops.build(ctx, platform(ctx) if bundles is None else bundles,
                        secrets_dir=secrets_dir or Path("/nonexistent"))


def objects(layout: gitops.Layout, path: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(layout.files[path]) if o]


def layers(layout: gitops.Layout) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects(layout, f"{ROOT}/flux-system/layers.yaml")}


def obj(name: str, api_version: str, kind: str, namespace: str | None = None,
        source: str = "manifests/x/objects.yaml") -> Document:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return Document(source, {"apiVersion": api_version, "kind": kind, "metadata": meta})


def release(name: str, repo: str, url: str, namespace: str = "kafka") -> Release:
    return Release(name=name, namespace=namespace, repo_name=repo, repo_url=url, chart=name,
                   version="1.2.3", values_source=f"helm-values/{name}.yaml",
                   values={"replicas": 1, "nested": {"list": [1, 2]}})


# The default inventory, every component ------------------------------------------------

def test_default_layout_is_deterministic() -> None:
    first, second = gitops.build(CTX), gitops.build(variant())
    assert first.files == second.files
    assert [d.obj for d in first.documents] == [d.obj for d in second.documents]


def test_helmreleases_carry_the_release_values_and_versions() -> None:
    bundles = render_all(CTX)
    layout = gitops.build(CTX, bundles)
    found = {d.name: d.obj for d in layout.documents if d.kind == "HelmRelease"}
    repos = {d.name: d.obj for d in layout.documents if d.kind == "HelmRepository"}
    releases = [r for b in bundles.values() for r in b.releases]
    assert releases and sorted(found) == sorted(r.name for r in releases)
    for rel in releases:
        spec = found[rel.name]["spec"]
        assert spec["values"] == rel.values
        assert spec["chart"]["spec"]["version"] == rel.version
        assert spec["chart"]["spec"]["chart"] == rel.chart
        assert spec["chart"]["spec"]["sourceRef"] == {
            "kind": "HelmRepository", "name": rel.repo_name, "namespace": "flux-system"}
        assert (spec["releaseName"], spec["targetNamespace"], spec["storageNamespace"]) == (
            rel.name, rel.namespace, rel.namespace)
        assert repos[rel.repo_name]["spec"]["url"] == rel.repo_url
    assert found["cert-manager"]["spec"]["chart"]["spec"]["version"] == "v1.13.1"
    assert repos["jetstack"]["spec"]["url"] == "https://charts.jetstack.io"


def test_bundle_objects_are_copied_unchanged() -> None:
    bundles = render_all(CTX)
    layout = gitops.build(CTX, bundles)
    written = [d.obj for d in layout.documents]
    for bundle in bundles.values():
        for doc in bundle.documents:
            assert doc.obj in written, doc.label
    generated = {"HelmRelease", "HelmRepository"}
    n_layers = len(layers(layout))
    n_bundle = sum(len(b.documents) for b in bundles.values())
    n_generated = sum(1 for d in layout.documents if d.kind in generated)
    assert len(written) == n_bundle + n_generated + n_layers


# Structure ------------------------------------------------------------------------------

def test_layout_files_of_the_platform_components() -> None:
    layout = build()
    assert layout.problems == []
    assert sorted(layout.files) == [
        ".sops.yaml",
        f"{ROOT}/cert-manager/custom-resources/clusterissuers.yaml",
        f"{ROOT}/cert-manager/custom-resources/kustomization.yaml",
        f"{ROOT}/cert-manager/helmrelease-cert-manager.yaml",
        f"{ROOT}/cert-manager/kustomization.yaml",
        f"{ROOT}/flux-system/helm-repositories.yaml",
        f"{ROOT}/flux-system/kustomization.yaml",
        f"{ROOT}/flux-system/layers.yaml",
        f"{ROOT}/flux-system/namespace.yaml",
        f"{ROOT}/flux-system/sync.yaml",
        f"{ROOT}/kustomization.yaml",
        f"{ROOT}/namespaces/cert-manager.yaml",
        f"{ROOT}/namespaces/kustomization.yaml",
        f"{ROOT}/traefik/helmchartconfig.yaml",
        f"{ROOT}/traefik/kustomization.yaml",
    ]
    assert objects(layout, f"{ROOT}/kustomization.yaml") == [{
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["flux-system"]}]
    assert layout.files[".sops.yaml"] == sops.creation_rules([SPEC_AGE_RECIPIENT])
    sync = {o["kind"]: o for o in objects(layout, f"{ROOT}/flux-system/sync.yaml")}
    assert sync["Kustomization"]["spec"]["path"] == "./clusters/vps"
    assert sync["GitRepository"]["spec"]["interval"] == "1m"


def test_every_kustomization_lists_exactly_its_directory() -> None:
    layout = gitops.build(CTX)
    dirs: dict[str, set[str]] = {}
    for path in layout.files:
        p = PurePosixPath(path)
        dirs.setdefault(str(p.parent), set()).add(p.name)
    for directory, names in dirs.items():
        if directory in (".", ROOT):
            continue
        [kust] = objects(layout, f"{directory}/kustomization.yaml")
        assert sorted(kust["resources"]) == sorted(names - {"kustomization.yaml"}), directory


def test_layers_are_chained_and_point_at_real_directories() -> None:
    layout = build()
    found = layers(layout)
    assert list(found) == ["namespaces", "traefik", "cert-manager",
                           "cert-manager-custom-resources"]
    deps = {n: [d["name"] for d in o["spec"].get("dependsOn", [])] for n, o in found.items()}
    assert deps == {"namespaces": [], "traefik": ["namespaces"],
                    "cert-manager": ["namespaces"],
                    "cert-manager-custom-resources": ["namespaces", "cert-manager"]}
    for name, layer in found.items():
        spec = layer["spec"]
        assert layer["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        assert layer["metadata"]["namespace"] == "flux-system"
        assert (spec["interval"], spec["retryInterval"]) == ("10m", "1m")
        assert spec["prune"] is True and spec["wait"] is True
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
        assert spec["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
        assert f"{spec['path'].removeprefix('./')}/kustomization.yaml" in layout.files, name


def test_every_dependency_is_a_layer() -> None:
    found = layers(gitops.build(CTX))
    for layer in found.values():
        for dep in layer["spec"].get("dependsOn", []):
            assert dep["name"] in found


def test_custom_resources_wait_for_the_charts_that_bring_their_crds() -> None:
    bundles = {
        **platform(),
        "monitoring": Bundle(releases=[release("kube-prometheus-stack", "prometheus",
                                               "https://prometheus.example/charts",
                                               namespace="monitoring")]),
        "kafka": Bundle(
            documents=[obj("kafka", "v1", "Namespace"),
                       obj("t", "kafka.strimzi.io/v1beta2", "KafkaTopic", "kafka"),
                       obj("p", "monitoring.coreos.com/v1", "PodMonitor", "kafka")],
            releases=[release("strimzi", "strimzi", "oci://quay.io/strimzi-helm")]),
    }
    layout = build(bundles)
    assert layout.problems == []
    deps = {n: [d["name"] for d in o["spec"].get("dependsOn", [])]
            for n, o in layers(layout).items()}
    assert deps["kafka-custom-resources"] == ["namespaces", "kafka", "monitoring"]
    assert deps["monitoring"] == ["namespaces"]
    repos = {o["metadata"]["name"]: o["spec"]
             for o in objects(layout, f"{ROOT}/flux-system/helm-repositories.yaml")}
    assert repos["strimzi"] == {"type": "oci", "interval": "10m",
                                "url": "oci://quay.io/strimzi-helm"}
    assert sorted(repos) == ["jetstack", "prometheus", "strimzi"]


def test_unplaceable_objects_and_releases_are_problems() -> None:
    bundles = {
        **platform(),
        "kafka": Bundle(
            documents=[obj("p", "monitoring.coreos.com/v1", "PodMonitor", "kafka"),
                       obj("w", "widgets.example.org/v1", "Widget", "kafka")],
            releases=[release("a", "jetstack", "https://other.example/charts"),
                      release("b", "local", "charts/b")]),
    }
    label = "manifests/x/objects.yaml"
    assert build(bundles).problems == [
        "helm-values/a.yaml: Release a: repo_name 'jetstack' is https://charts.jetstack.io"
        " elsewhere, here https://other.example/charts",
        "helm-values/b.yaml: Release b: repo_url 'charts/b': Flux needs an https:// or"
        " oci:// chart repository (render our own charts with tasks.stack.helm.template"
        " instead)",
        f"{label}: PodMonitor p: apiVersion monitoring.coreos.com/v1: its CRDs come from"
        " component monitoring, which renders nothing",
        f"{label}: Widget w: apiVersion widgets.example.org/v1: no component is known to"
        " install this CRD group (add it to CRD_PROVIDERS in tasks/stack/gitops.py)",
    ]


def test_gitops_path_follows_the_inventory() -> None:
    ctx = variant(gitops={"path": "./clusters/other", "reconcile_interval": "30m"})
    layout = build(ctx=ctx)
    assert layout.root == "clusters/other"
    assert all(p == ".sops.yaml" or p.startswith("clusters/other/") for p in layout.files)
    found = {o["metadata"]["name"]: o["spec"]
             for o in objects(layout, "clusters/other/flux-system/layers.yaml")}
    assert found["traefik"]["path"] == "./clusters/other/traefik"
    assert found["traefik"]["interval"] == "30m"


# Secrets --------------------------------------------------------------------------------

ENCRYPTED = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: app-config, namespace: app}}
stringData:
  REDIS_URL: ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]
sops:
  age: [{{recipient: {SPEC_AGE_RECIPIENT}, enc: x}}]
  mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
  encrypted_regex: ^(data|stringData)$
"""


def test_encrypted_secrets_are_copied_and_applied_first(tmp_path: Path) -> None:
    (tmp_path / "secret-app.sops.yaml").write_text(ENCRYPTED)
    (tmp_path / "secret-flux.sops.yaml").write_text(ENCRYPTED)  # bootstrap only
    (tmp_path / "secret-k3s.sops.yaml").write_text(ENCRYPTED)  # the hosts' K3s token
    (tmp_path / ".sops.yaml").write_text("creation_rules: []\n")
    layout = build(secrets_dir=tmp_path)
    assert layout.problems == []
    assert layout.files[f"{ROOT}/secrets/secret-app.sops.yaml"] == ENCRYPTED
    assert objects(layout, f"{ROOT}/secrets/kustomization.yaml")[0]["resources"] == [
        "secret-app.sops.yaml"]
    assert not any("secret-flux" in p or "secret-k3s" in p for p in layout.files)
    assert not any(d.kind == "Secret" for d in layout.documents)  # not schema-valid as is
    deps = {n: [d["name"] for d in o["spec"].get("dependsOn", [])]
            for n, o in layers(layout).items()}
    assert deps["secrets"] == ["namespaces"]
    assert deps["traefik"] == ["namespaces", "secrets"]


def test_plaintext_secrets_are_refused(tmp_path: Path) -> None:
    plain = ENCRYPTED.split("sops:")[0].replace(
        "ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]", "redis://:pw@redis:6379")
    (tmp_path / "secret-app.sops.yaml").write_text(plain)
    layout = build(secrets_dir=tmp_path)
    assert layout.problems == [
        "secrets/secret-app.sops.yaml: Secret app-config: sops: missing or without age"
        " recipients and MAC: not encrypted with `sops --encrypt`",
        "secrets/secret-app.sops.yaml: Secret app-config: stringData.REDIS_URL: plaintext"
        " value (must be ENC[AES256_GCM,...])"]
    with pytest.raises(UserError):
        gitops.write(layout, tmp_path / "out")


# Writing --------------------------------------------------------------------------------

def platform_without_cert_manager(ctx: dict[str, Any] | None = None) -> dict[str, Bundle]:
    ctx = ctx or CTX
    return {m.NAME: m.render(ctx) for m in (k3s, traefik, flux)}


def manifest(out: Path) -> dict[str, str]:
    data = json.loads((out / gitops.MANIFEST).read_text())
    files: dict[str, str] = data["files"]
    return files


def test_write_writes_the_layout_and_its_manifest(tmp_path: Path) -> None:
    layout = build()
    done = gitops.write(layout, tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in done.files) == sorted(layout.files)
    assert done.changed == done.files and done.removed == [] and done.left_alone == []
    for rel, text in layout.files.items():
        assert (tmp_path / rel).read_text() == text
        list(yaml.safe_load_all(text))  # every file parses
    assert manifest(tmp_path) == {
        rel: hashlib.sha256(text.encode()).hexdigest() for rel, text in layout.files.items()}
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind
    again = gitops.write(build(), tmp_path)  # deterministic: nothing to rewrite
    assert again.changed == [] and again.report() == []


def test_a_file_render_did_not_write_survives_a_rerender(tmp_path: Path) -> None:
    gitops.write(build(), tmp_path)
    foreign = {f"{ROOT}/old/gone.yaml": "x: 1\n", f"{ROOT}/traefik/mine.yaml": "y: 2\n",
               "README.md": "the GitOps repository\n"}
    for rel, text in foreign.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    done = gitops.write(build(), tmp_path)
    for rel, text in foreign.items():
        assert (tmp_path / rel).read_text() == text
    assert done.removed == []
    assert done.left_alone == [f"{ROOT}/old/gone.yaml", f"{ROOT}/traefik/mine.yaml"]
    assert done.report() == [
        f"left alone {ROOT}/old/gone.yaml: not written by gitops.render",
        f"left alone {ROOT}/traefik/mine.yaml: not written by gitops.render"]
    assert f"{ROOT}/old/gone.yaml" not in manifest(tmp_path)


def test_left_alone_files_are_reported_one_line_each_up_to_a_cap(tmp_path: Path) -> None:
    (tmp_path / ROOT / "mine").mkdir(parents=True)
    for n in range(gitops.REPORT_CAP + 3):
        (tmp_path / ROOT / "mine" / f"f{n:02}.yaml").write_text("x: 1\n")
    report = gitops.write(build(), tmp_path).report()
    assert len(report) == gitops.REPORT_CAP + 1
    assert report[0] == f"left alone {ROOT}/mine/f00.yaml: not written by gitops.render"
    assert report[-1] == "left alone 3 more files not written by gitops.render"


def test_a_file_no_longer_produced_is_removed(tmp_path: Path) -> None:
    gitops.write(build(), tmp_path)
    issuers = tmp_path / ROOT / "cert-manager" / "custom-resources" / "clusterissuers.yaml"
    mine = tmp_path / ROOT / "namespaces" / "mine.yaml"
    mine.write_text("x: 1\n")
    assert issuers.is_file()
    done = gitops.write(build(platform_without_cert_manager()), tmp_path)
    gone = {f"{ROOT}/cert-manager/custom-resources/clusterissuers.yaml",
            f"{ROOT}/cert-manager/custom-resources/kustomization.yaml",
            f"{ROOT}/cert-manager/helmrelease-cert-manager.yaml",
            f"{ROOT}/cert-manager/kustomization.yaml",
            f"{ROOT}/flux-system/helm-repositories.yaml",
            f"{ROOT}/namespaces/cert-manager.yaml",
            f"{ROOT}/namespaces/kustomization.yaml"}
    assert {str(p.relative_to(tmp_path)) for p in done.removed} == gone
    assert not any((tmp_path / rel).exists() for rel in gone)
    assert not (tmp_path / ROOT / "cert-manager").exists()  # emptied directories too
    assert mine.read_text() == "x: 1\n"  # not ours: its directory stays with it
    assert done.left_alone == [f"{ROOT}/namespaces/mine.yaml"]
    assert sorted(manifest(tmp_path)) == sorted(build(platform_without_cert_manager()).files)


def test_a_hand_edited_file_is_refused_without_force(tmp_path: Path) -> None:
    gitops.write(build(), tmp_path)
    edited = tmp_path / ROOT / "traefik" / "helmchartconfig.yaml"
    edited.write_text("# tuned by hand\n")
    dropped = tmp_path / ROOT / "cert-manager" / "helmrelease-cert-manager.yaml"
    dropped.write_text("# tuned by hand too\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(UserError) as err:
        gitops.write(build(platform_without_cert_manager()), tmp_path)
    assert err.value.lines == [
        f"{edited}: edited by hand since the last render: refusing to overwrite or delete it",
        f"{dropped}: edited by hand since the last render, no longer produced: refusing to"
        " overwrite or delete it",
        "nothing written or deleted; --force overwrites (or deletes) these files"]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    done = gitops.write(build(platform_without_cert_manager()), tmp_path, force=True)
    assert edited.read_text() == build().files[f"{ROOT}/traefik/helmchartconfig.yaml"]
    assert not dropped.exists()
    assert done.forced == [
        f"{ROOT}/traefik/helmchartconfig.yaml (edited by hand since the last render)",
        f"{ROOT}/cert-manager/helmrelease-cert-manager.yaml (edited by hand since the last"
        " render, no longer produced)"]


def test_a_file_in_the_way_that_render_did_not_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").write_text("creation_rules: [] # the GitOps repo's own\n")
    with pytest.raises(UserError) as err:
        gitops.write(build(), tmp_path)
    assert err.value.lines[0] == (f"{tmp_path}/.sops.yaml: exists and was not written by"
                                  " gitops.render: refusing to overwrite or delete it")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sops.yaml"]  # nothing written
    (tmp_path / ".sops.yaml").write_text(build().files[".sops.yaml"])  # same bytes: adopted
    assert gitops.write(build(), tmp_path).forced == []
    assert ".sops.yaml" in manifest(tmp_path)


def test_a_manifest_entry_outside_the_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    victim = tmp_path / "victim.yaml"
    victim.write_text("x: 1\n")
    out.mkdir()
    (out / gitops.MANIFEST).write_text(json.dumps({"files": {"../victim.yaml": "0" * 64}}))
    with pytest.raises(UserError, match="is not a relative path with its sha256"):
        gitops.write(build(), out)
    assert victim.read_text() == "x: 1\n"


# Where render may write -----------------------------------------------------------------

@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """The repository's inventory, with a key file that exists (render needs none)."""
    inv = tmp_path / "inventory.yaml"
    (tmp_path / "key").write_text("")
    text = (REPO_ROOT / "inventory.yaml").read_text()
    inv.write_text(text.replace("~/.ssh/id_ed25519", str(tmp_path / "key")))
    return inv


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in repository root, with files a careless render would delete."""
    root = tmp_path / "repo"
    (root / ROOT).mkdir(parents=True)
    (root / ROOT / "sentinel.yaml").write_text("keep: me\n")
    (root / "tasks").mkdir()
    (root / "tasks" / "sentinel.py").write_text("KEEP = 1\n")
    (root / ".sops.yaml").write_text("creation_rules: []\n")
    monkeypatch.setattr(gitops_task, "REPO_ROOT", root)
    monkeypatch.setattr(gitops, "render_all", platform)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("output", [".", "tasks", "./tasks/../", ".cache/gitops/../..",
                                    ".cache/gitopsx", ".cache", "link-to-repo"])
def test_task_refuses_an_output_inside_the_repository(
        output: str, repo: Path, inventory: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "link-to-repo").symlink_to(repo)
    out = str(tmp_path / output) if output == "link-to-repo" else output
    before = tree(repo)
    with pytest.raises(Exit) as exit_:
        gitops_task.render(Context(), inventory=str(inventory), output=out)
    assert exit_.value.code == 1
    resolved = (repo / out).resolve()
    shown = out if output == "link-to-repo" else repo / output
    assert capsys.readouterr().err == (
        f"error: --output {shown}: {resolved} is inside this repository ({repo}); write to"
        " .cache/gitops (the default) or to a directory outside it, e.g. a checkout of the"
        " GitOps repository\n")
    assert tree(repo) == before  # the sentinels survive; nothing written


def test_task_refuses_this_repository_itself(inventory: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    sops_config = (REPO_ROOT / ".sops.yaml").read_bytes()
    for output in (".", str(REPO_ROOT / "tasks" / "..")):  # both resolve to REPO_ROOT
        with pytest.raises(Exit) as exit_:
            gitops_task.render(Context(), inventory=str(inventory), output=output)
        assert exit_.value.code == 1
        assert "is inside this repository" in capsys.readouterr().err
    assert (REPO_ROOT / ".sops.yaml").read_bytes() == sops_config
    assert not (REPO_ROOT / gitops.MANIFEST).exists()
    assert not (REPO_ROOT / "clusters").exists()


def test_dot_dot_out_of_a_symlinked_cache_is_refused(repo: Path, tmp_path: Path) -> None:
    """.cache/gitops/../../tasks is refused when .cache links elsewhere (as in a git
    worktree sharing the main checkout's cache): it resolves outside, reads as inside."""
    (tmp_path / "elsewhere").mkdir()
    (repo / ".cache").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError) as err:
        gitops.write(build(), repo / ".cache/gitops/../../tasks", repo_root=repo)
    assert err.value.lines == [
        f"--output {repo}/.cache/gitops/../../tasks: {repo}/tasks (through a symlink:"
        f" {tmp_path}/tasks) is inside this repository ({repo}); write to .cache/gitops"
        " (the default) or to a directory outside it, e.g. a checkout of the GitOps"
        " repository"]
    assert not (tmp_path / "tasks").exists()
    assert tree(repo / "tasks") == {"sentinel.py": b"KEEP = 1\n"}
    out = repo / ".cache" / "gitops"  # the cache itself, resolved elsewhere: fine
    gitops.write(build(), out, repo_root=repo)
    assert (tmp_path / "elsewhere" / "gitops" / gitops.MANIFEST).is_file()


def test_a_cache_redirected_into_the_repository_is_refused(repo: Path) -> None:
    (repo / ".cache").mkdir()
    (repo / ".cache" / "gitops").symlink_to(repo / "tasks")
    with pytest.raises(UserError, match="is inside this repository"):
        gitops.write(build(), repo / ".cache" / "gitops", repo_root=repo)
    assert tree(repo / "tasks") == {"sentinel.py": b"KEEP = 1\n"}


def test_task_writes_the_default_output(repo: Path, inventory: Path) -> None:
    before = tree(repo)
    gitops_task.render(Context(), inventory=str(inventory))
    out = repo / ".cache" / "gitops"
    assert (out / ROOT / "flux-system" / "layers.yaml").is_file()
    assert sorted(manifest(out)) == sorted(build().files)
    assert {k: v for k, v in tree(repo).items() if not k.startswith(".cache/")} == before
    gitops_task.render(Context(), inventory=str(inventory), output=".cache/gitops/other")
    assert (out / "other" / ROOT / "kustomization.yaml").is_file()
    assert gitops.check_output(REPO_ROOT / ".cache" / "gitops") == (
        REPO_ROOT / ".cache" / "gitops").resolve()


def test_task_writes_the_layout(tmp_path: Path, inventory: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(gitops, "render_all", platform)
    gitops_task.render(Context(), inventory=str(inventory), output=str(tmp_path / "out"))
    assert (tmp_path / "out" / ROOT / "flux-system" / "layers.yaml").is_file()
    assert (tmp_path / "out" / ".sops.yaml").read_text() == sops.SOPS_CONFIG.read_text()
    n = len(build().files)
    assert capsys.readouterr().out == (
        f"wrote {n} of {n} files (the others were unchanged) to {tmp_path / 'out'}/{ROOT}"
        " (and .sops.yaml, .stack-gitops-manifest.json)\n")
    (tmp_path / "out" / ROOT / "traefik" / "helmchartconfig.yaml").write_text("# mine\n")
    with pytest.raises(Exit):
        gitops_task.render(Context(), inventory=str(inventory), output=str(tmp_path / "out"))
    gitops_task.render(Context(), inventory=str(inventory), output=str(tmp_path / "out"),
                       force=True)
    assert capsys.readouterr().out.splitlines()[0] == (
        f"--force: overwrote or removed {ROOT}/traefik/helmchartconfig.yaml (edited by hand"
        " since the last render)")


# Schemas --------------------------------------------------------------------------------

def test_generated_flux_objects_match_their_crd_schemas() -> None:
    if not CRD_SCHEMAS.is_dir():
        pytest.skip(f"no CRD schemas at {CRD_SCHEMAS} (../shared/schemas/crds)")
    bundles = {**platform(), "kafka": Bundle(releases=[
        release("strimzi", "strimzi", "oci://quay.io/strimzi-helm")])}
    layout = build(bundles)
    checked = set()
    for doc in layout.documents:
        group, _, version = doc.api_version.rpartition("/")
        if not group.endswith("toolkit.fluxcd.io"):
            continue
        schema = json.loads((CRD_SCHEMAS / group / f"{doc.kind.lower()}_{version}.json")
                            .read_text())
        jsonschema.validate(doc.obj, schema)
        checked.add(doc.kind)
    assert checked == {"HelmRelease", "HelmRepository", "Kustomization", "GitRepository"}


def test_gitops_render_works_offline_without_key_files(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump({
        "domain": "example.com", "acme_email": "ops@example.com",
        "operators": ["203.0.113.10/32"],
        "hosts": [{"name": "vps1", "address": "203.0.113.20", "user": "admin",
                   "key_file": "/nonexistent/id_ed25519"}],
        "apps": {k: {"image": f"ghcr.io/team-mercurious/{k.replace('_', '-')}:1.0.0"}
                 for k in ("api_gateway", "api_generation", "api_enrichment")}}))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "invoke", "gitops.render", "-i", str(inv),
                           "--output", str(out)], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (out / "clusters" / "vps").is_dir()
