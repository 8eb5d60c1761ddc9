"""The GitOps layout Flux reconciles (spec §5), written from the components' bundles.

One source of truth: the objects are the very ones the deploy tasks apply
(:func:`tasks.stack.components.render_all`); each chart :class:`Release` becomes a Flux
HelmRepository + HelmRelease with the same chart, pinned version and values. Under the
inventory's ``gitops.path`` (spec ``./clusters/vps``)::

    kustomization.yaml             -> flux-system (all Flux applies from the root)
    flux-system/                   Namespace, GitRepository + Kustomization flux-system,
                                   helm-repositories.yaml, layers.yaml (see below)
    namespaces/<component>.yaml    every Namespace (with its PodSecurity labels)
    secrets/*.sops.yaml            the SOPS-encrypted Secrets of secrets/, unchanged
    <component>/                   its objects and HelmReleases
    <component>/custom-resources/  its objects whose CRDs a chart installs

``layers.yaml`` holds one Flux Kustomization per directory, chained with ``dependsOn``
and ``wait`` so nothing is applied before what it needs: namespaces, then secrets, then
each component; a ``custom-resources`` directory only once the components that install
its CRDs are ready (a ClusterIssuer before cert-manager's CRDs would fail the dry run of
its whole directory). ``.sops.yaml`` (creation rules) is written at the output root.
Rendering is deterministic: the same inventory gives byte-identical files.

:func:`write` changes only what it wrote: ``.stack-gitops-manifest.json`` at the output
root lists those files with their sha256; anything else is left alone, a hand-edited
file is refused without ``force``, and an output inside this repository is refused
unless it is the default cache ``.cache/gitops``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tasks.engine.errors import UserError
from tasks.localfile import write_atomic
from tasks.repo import REPO_ROOT
from tasks.stack import sops
from tasks.stack.components import render_all
from tasks.stack.render import Bundle, Document, Release

FLUX_NS = "flux-system"
SOURCE_NAME = "flux-system"  # the GitRepository every layer reads
LABELS = {"app.kubernetes.io/part-of": "k3s-vps-platform",
          "app.kubernetes.io/managed-by": "stack"}

# API groups served before any chart of ours is installed: Kubernetes itself, K3s's
# helm-controller and bundled Traefik CRDs, and Flux (installed by flux.bootstrap).
PRESENT_GROUPS = frozenset({
    "helm.cattle.io", "k3s.cattle.io", "traefik.io", "traefik.containo.us",
    "source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io",
    "notification.toolkit.fluxcd.io", "image.toolkit.fluxcd.io",
})
# API group -> the component whose chart installs its CRDs. A component's custom
# resources wait for these components. Add a line when a new CRD group is used.
CRD_PROVIDERS = {
    "cert-manager.io": "cert_manager", "acme.cert-manager.io": "cert_manager",
    "monitoring.coreos.com": "monitoring",
    "kafka.strimzi.io": "kafka", "core.strimzi.io": "kafka",
}


@dataclass
class Layout:
    """The files to write (paths relative to the output directory) and their objects."""

    root: str
    files: dict[str, str] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def needs_crds(doc: Document) -> bool:
    """True when the object's kind comes from a CRD that one of our charts installs."""
    group = group_of(doc.api_version)
    return not (group == "" or "." not in group or group.endswith(".k8s.io")
                or group in PRESENT_GROUPS)


def directory(component: str) -> str:
    """The layout directory (and Flux Kustomization name) of a component."""
    return FLUX_NS if component == "flux" else component.replace("_", "-")


def root_path(ctx: Mapping[str, Any]) -> str:
    """``./clusters/vps`` -> ``clusters/vps``."""
    parts = [p for p in PurePosixPath(str(ctx["gitops"]["path"])).parts if p not in (".", "/")]
    return "/".join(parts)


# YAML output --------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (HelmChartConfig valuesContent stays readable)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not re.search(r"[ \t]\n|\t", value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(objs: list[dict[str, Any]], header: str) -> str:
    body = yaml.dump_all(objs, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True,
                         default_flow_style=False, explicit_start=True)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


# Flux objects generated from releases and layers ---------------------------------------

def _meta(name: str, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": FLUX_NS, "labels": {**LABELS, **(extra or {})}}


def helm_repository(rel: Release, ctx: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"interval": ctx["gitops"]["reconcile_interval"],
                            "url": rel.repo_url}
    if rel.repo_url.startswith("oci://"):
        spec = {"type": "oci", **spec}
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
            "metadata": _meta(rel.repo_name), "spec": spec}


def helm_release(rel: Release, ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The HelmRelease for ``rel``: same release name and namespace as the deploy task's
    ``helm upgrade --install`` (Flux adopts that release), same chart, version, values."""
    interval = ctx["gitops"]["reconcile_interval"]
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": _meta(rel.name),
        "spec": {
            "interval": interval,
            "releaseName": rel.name,
            "targetNamespace": rel.namespace,
            "storageNamespace": rel.namespace,
            "chart": {"spec": {
                "chart": rel.chart, "version": rel.version, "interval": interval,
                "sourceRef": {"kind": "HelmRepository", "name": rel.repo_name,
                              "namespace": FLUX_NS},
            }},
            # The namespace comes from namespaces/ (with its PodSecurity labels).
            "install": {"createNamespace": False, "crds": "CreateReplace",
                        "remediation": {"retries": 3}},
            "upgrade": {"crds": "CreateReplace", "remediation": {"retries": 3}},
            "values": rel.values,
        },
    }


def flux_kustomization(name: str, path: str, depends: list[str],
                       ctx: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": ctx["gitops"]["reconcile_interval"],
        "retryInterval": ctx["gitops"]["interval"],
        "timeout": "10m",
        "path": f"./{path}",
        "prune": True,
        "wait": True,  # dependents start once everything here is ready
        "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
        "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}},
    }
    if depends:
        spec["dependsOn"] = [{"name": d} for d in depends]
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": _meta(name), "spec": spec}


def kustomize_file(resources: list[str]) -> str:
    body = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": resources}
    return dump([body], "Generated by `inv gitops.render`: the files of this directory.")


# Building the layout ------------------------------------------------------------------

class _Writer:
    """Accumulates a layout's files; objects grouped by the file they came from."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.dirs: dict[str, list[str]] = {}

    def objects(self, directory: str, name: str, docs: list[Document], origin: str) -> None:
        path = self._claim(directory, name)
        self.layout.files[path] = dump(
            [d.obj for d in docs],
            f"Generated by `inv gitops.render` from {origin}: edit that, not this file.")
        self.layout.documents += [Document(f"gitops:{path}", d.obj) for d in docs]

    def raw(self, directory: str, name: str, text: str) -> None:
        self.layout.files[self._claim(directory, name)] = text

    def _claim(self, directory: str, name: str) -> str:
        names = self.dirs.setdefault(directory, [])
        base, n = name.removesuffix(".yaml"), 2
        while name in names:
            name, n = f"{base}-{n}.yaml", n + 1
        names.append(name)
        return f"{directory}/{name}"

    def kustomizations(self) -> None:
        for directory, names in self.dirs.items():
            self.layout.files[f"{directory}/kustomization.yaml"] = kustomize_file(names)


def _file_name(source: str) -> str:
    name = PurePosixPath(source.split(":", 1)[-1]).name
    stem = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.") or "objects"
    return stem if stem.endswith(".yaml") else f"{stem.removesuffix('.yml')}.yaml"


def _by_source(docs: list[Document]) -> dict[str, list[Document]]:
    out: dict[str, list[Document]] = {}
    for doc in docs:
        out.setdefault(doc.source, []).append(doc)
    return out


def _write_docs(w: _Writer, directory: str, docs: list[Document]) -> None:
    for source, group in _by_source(docs).items():
        w.objects(directory, _file_name(source), group, source)


def build(ctx: Mapping[str, Any], bundles: Mapping[str, Bundle] | None = None,
          secrets_dir: Path = sops.SECRETS_DIR) -> Layout:
    """The layout for this inventory (``bundles`` default: every component rendered)."""
    bundles = render_all(ctx) if bundles is None else bundles
    root = root_path(ctx)
    layout = Layout(root=root)
    w = _Writer(layout)
    layers: list[tuple[str, str, list[str]]] = []  # (name, directory, dependsOn)

    namespaces = [(c, [d for d in b.documents if d.kind == "Namespace"])
                  for c, b in bundles.items() if c != "flux"]
    for comp, docs in namespaces:
        for source, group in _by_source(docs).items():
            w.objects(f"{root}/namespaces", f"{directory(comp)}.yaml", group, source)
    first: list[str] = []
    if any(docs for _, docs in namespaces):
        layers.append(("namespaces", f"{root}/namespaces", []))
        first = ["namespaces"]

    encrypted = [p for p in sops.encrypted_files(secrets_dir)
                 if sops.stem(p) not in sops.NOT_IN_GITOPS]
    for path in encrypted:
        text = path.read_text()
        layout.problems += sops.encryption_problems(text, f"secrets/{path.name}")
        w.raw(f"{root}/secrets", path.name, text)
    if encrypted:
        layers.append(("secrets", f"{root}/secrets", list(first)))
        first = [*first, "secrets"]

    repos: dict[str, Release] = {}
    bases = {c for c, b in bundles.items() if c != "flux" and (
        b.releases or any(d.kind != "Namespace" and not needs_crds(d) for d in b.documents))}
    for comp, bundle in bundles.items():
        if comp == "flux":
            continue
        name = directory(comp)
        base = [d for d in bundle.documents if d.kind != "Namespace" and not needs_crds(d)]
        custom = [d for d in bundle.documents if needs_crds(d)]
        _write_docs(w, f"{root}/{name}", base)
        for rel in bundle.releases:
            seen = repos.setdefault(rel.repo_name, rel)
            if seen.repo_url != rel.repo_url:
                layout.problems.append(
                    f"{rel.values_source}: Release {rel.name}: repo_name {rel.repo_name!r}"
                    f" is {seen.repo_url} elsewhere, here {rel.repo_url}")
            if not re.match(r"^(https://|http://|oci://)", rel.repo_url):
                layout.problems.append(
                    f"{rel.values_source}: Release {rel.name}: repo_url {rel.repo_url!r}:"
                    " Flux needs an https:// or oci:// chart repository (render our own"
                    " charts with tasks.stack.helm.template instead)")
            doc = Document(rel.values_source, helm_release(rel, ctx))
            w.objects(f"{root}/{name}", f"helmrelease-{rel.name}.yaml", [doc],
                      f"{rel.values_source} (chart {rel.chart} {rel.version})")
        if comp in bases:
            layers.append((name, f"{root}/{name}", list(first)))
        if custom:
            _write_docs(w, f"{root}/{name}/custom-resources", custom)
            needs = _providers(custom, comp, bases, layout.problems)
            layers.append((f"{name}-custom-resources", f"{root}/{name}/custom-resources",
                           [*first, *(directory(c) for c in needs)]))

    flux = bundles.get("flux", Bundle())
    _write_docs(w, f"{root}/{FLUX_NS}", flux.documents)
    if repos:
        docs = [Document("generated:helm-repositories", helm_repository(r, ctx))
                for _, r in sorted(repos.items())]
        w.objects(f"{root}/{FLUX_NS}", "helm-repositories.yaml", docs,
                  "the components' chart releases (tasks/stack/components/)")
    stack = [Document("generated:layers", flux_kustomization(n, p, deps, ctx))
             for n, p, deps in layers]
    w.objects(f"{root}/{FLUX_NS}", "layers.yaml", stack,
              "tasks/stack/gitops.py (one Kustomization per directory, in dependency order)")
    w.kustomizations()
    layout.files[f"{root}/kustomization.yaml"] = kustomize_file([FLUX_NS])
    layout.files[".sops.yaml"] = sops.creation_rules(list(ctx["secrets"]["age_recipients"]))
    layout.files = dict(sorted(layout.files.items()))
    return layout


def _providers(custom: list[Document], comp: str, bases: set[str],
               problems: list[str]) -> list[str]:
    """The components whose charts install the CRDs of ``custom`` (own base first)."""
    needs = [comp] if comp in bases else []
    for doc in custom:
        group = group_of(doc.api_version)
        provider = CRD_PROVIDERS.get(group)
        if provider is None:
            problems.append(f"{doc.label}: apiVersion {doc.api_version}: no component is"
                            " known to install this CRD group (add it to CRD_PROVIDERS in"
                            " tasks/stack/gitops.py)")
        elif provider not in bases:
            problems.append(f"{doc.label}: apiVersion {doc.api_version}: its CRDs come"
                            f" from component {provider}, which renders nothing")
        elif provider not in needs:
            needs.append(provider)
    return needs


# Writing ------------------------------------------------------------------------------

DEFAULT_OUTPUT = ".cache/gitops"  # inside the repository, the only place render may write
MANIFEST = ".stack-gitops-manifest.json"  # at the output root: what the last render wrote
REPORT_CAP = 10  # lines about files left alone, then a count


@dataclass
class Written:
    """What :func:`write` did (paths under the output directory)."""

    files: list[Path] = field(default_factory=list)  # every file of the layout, in place
    changed: list[Path] = field(default_factory=list)  # those (re)written this time
    removed: list[Path] = field(default_factory=list)  # ours, no longer produced
    left_alone: list[str] = field(default_factory=list)  # not ours: never touched
    forced: list[str] = field(default_factory=list)  # "path: why", changed by --force

    def report(self) -> list[str]:
        lines = [f"removed {p} (written by the last render, no longer produced)"
                 for p in self.removed]
        lines += [f"--force: overwrote or removed {what}" for what in self.forced]
        shown = self.left_alone[:REPORT_CAP]
        lines += [f"left alone {rel}: not written by gitops.render" for rel in shown]
        if len(self.left_alone) > len(shown):
            lines.append(f"left alone {len(self.left_alone) - len(shown)} more files"
                         " not written by gitops.render")
        return lines


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def check_output(out: Path, repo_root: Path | None = None, what: str = "--output") -> Path:
    """The resolved output directory; refused inside the repository unless under
    :data:`DEFAULT_OUTPUT`.

    Decided on the path with symlinks and ``..`` resolved, and also on the path as
    written with only ``..`` collapsed: ``.cache/gitops/../../tasks`` is refused even
    when ``.cache`` is a symlink that makes it resolve elsewhere.
    """
    root = (repo_root or REPO_ROOT).resolve()
    resolved = out.resolve()
    lexical = Path(os.path.normpath(root / out))  # root / an absolute path is that path
    cache = (root / DEFAULT_OUTPUT).resolve()
    # A .cache/gitops that is a symlink to elsewhere in the repository is no cache.
    cache_ok = cache == root / DEFAULT_OUTPUT or not _inside(cache, root)
    for path, cache_dir, is_ in ((resolved, cache, f"{resolved} is"),
                                 (lexical, root / DEFAULT_OUTPUT,
                                  f"{lexical} (through a symlink: {resolved}) is")):
        if _inside(path, root) and not (cache_ok and _inside(path, cache_dir)):
            raise UserError(
                f"{what} {out}: {is_} inside this repository ({root}); write to"
                f" {DEFAULT_OUTPUT} (the default) or to a directory outside it, e.g. a"
                " checkout of the GitOps repository")
    return resolved


def _read_manifest(out: Path) -> dict[str, str]:
    path = out / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); nothing written: fix it, or remove it"
                        " and render with --force") from None
    for rel, digest in files.items():
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or not isinstance(digest, str):
            raise UserError(f"{path}: entry {rel!r} is not a relative path with its sha256;"
                            " nothing written or deleted")
    return dict(files)


def _current(path: Path) -> str | None:
    """The sha256 of the file at ``path``, None when absent; a directory is a problem."""
    if path.is_symlink():
        return f"symlink to {os.readlink(path)}"  # never a sha256: not ours
    if path.is_file():
        return sha256(path.read_bytes())
    if path.exists():
        raise UserError(f"{path}: not a regular file where gitops.render writes one;"
                        " nothing written: move it away")
    return None


def _atomic_write(path: Path, data: bytes) -> None:
    write_atomic(path, data, 0o644)


def write(layout: Layout, out: Path, *, force: bool = False,
          repo_root: Path | None = None) -> Written:
    """Write the layout under ``out``, deleting only what the previous render wrote.

    ``out/`` :data:`MANIFEST` lists the files written (relative path -> sha256). A file
    listed there and no longer produced is removed; a file that is not listed is never
    overwritten or removed (reported when under ``out/<root>``); a listed file edited by
    hand since (another sha256) is neither, unless ``force``. Everything is checked
    before the first change; each file is replaced atomically, the manifest last.
    """
    if layout.problems:
        raise UserError(layout.problems[0], lines=layout.problems)
    out = check_output(out, repo_root)
    previous = _read_manifest(out)
    wanted = {rel: text.encode() for rel, text in layout.files.items()}
    for rel in [*wanted, *previous]:
        dest = (out / rel).resolve()
        if not _inside(dest, out):
            raise UserError(f"{rel}: resolves to {dest}, outside {out}; nothing written")
        check_output(dest, repo_root, what=rel)
        blocked = [d for d in (out / rel).parents if _inside(d, out) and d.is_file()]
        if rel in wanted and blocked:
            raise UserError(f"{blocked[-1]}: a file where gitops.render needs a directory;"
                            " nothing written: move it away")

    conflicts: list[tuple[str, str]] = []  # (relative path, why it is not ours to change)
    stale: list[Path] = []
    for rel, data in wanted.items():
        current = _current(out / rel)
        if current is None or current == sha256(data):
            continue
        if rel not in previous:
            conflicts.append((rel, "exists and was not written by gitops.render"))
        elif current != previous[rel]:
            conflicts.append((rel, "edited by hand since the last render"))
    for rel, digest in previous.items():
        current = _current(out / rel)
        if rel in wanted or current is None:
            continue
        if current != digest:
            conflicts.append((rel, "edited by hand since the last render, no longer produced"))
            if not force:
                continue
        stale.append(out / rel)
    if conflicts and not force:
        lines = [f"{out / rel}: {why}: refusing to overwrite or delete it"
                 for rel, why in conflicts]
        raise UserError(lines[0], lines=[
            *lines, "nothing written or deleted; --force overwrites (or deletes) these files"])

    target = out / layout.root
    known = set(wanted) | set(previous)
    left_alone = sorted(
        rel for p in (target.rglob("*") if target.is_dir() else [])
        if (p.is_file() or p.is_symlink())
        and (rel := p.relative_to(out).as_posix()) not in known)
    done = Written(left_alone=left_alone, forced=[f"{rel} ({why})" for rel, why in conflicts])
    for rel, data in wanted.items():
        path = out / rel
        if _current(path) != sha256(data):
            _atomic_write(path, data)
            done.changed.append(path)
        done.files.append(path)
    for path in stale:
        path.unlink()
        done.removed.append(path)
        for parent in path.parents:  # the directories this emptied, up to the output
            if parent == out or not _inside(parent, out) or any(parent.iterdir()):
                break
            parent.rmdir()
    manifest = {"generator": "inv gitops.render", "version": 1,
                "files": {rel: sha256(data) for rel, data in wanted.items()}}
    _atomic_write(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return done
