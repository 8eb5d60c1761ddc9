"""End to end: the real ``inv validate`` on the default inventory and on variants, and
the orchestration (render errors, component checks, helm lint, exit codes)."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke.context import Context
from invoke.exceptions import Exit
from test_validate_schemas import BROKEN
from validate_fixtures import SOURCE, edit, find, need_crd_schemas, valid_documents

from tasks.engine.errors import UserError
from tasks.model.fields import build
from tasks.model.model import Inventory
from tasks.repo import REPO_ROOT
from tasks.stack import components, helm
from tasks.stack.context import context
from tasks.stack.render import Bundle, Document
from tasks.stack.validate import run, validate_context
from tasks.stack.validate.schemas import SchemaStore
from tasks.validate import validate as validate_task

# (" and N from M upstream charts" when the pinned charts are pulled into .cache/charts/)
SUMMARY = re.compile(r"^validated (\d+) objects from (\d+) files"
                     r"( and \d+ from \d+ upstream charts)? in \d+\.\d\ds: ok$")


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO_ROOT / "inventory.yaml").read_text())
    return data


def ctx_of(data: Mapping[str, Any]) -> dict[str, Any]:
    inv, errors = build(Inventory, data)
    assert errors == []
    return context(inv)


def variants() -> dict[str, dict[str, Any]]:
    base = default_data()
    several = [*base["hosts"],
               {"name": "vps2", "address": "203.0.113.21", "user": "admin",
                "key_file": "~/.ssh/id_ed25519", "role": "agent"},
               {"name": "vps3", "address": "203.0.113.22", "user": "admin",
                "key_file": "~/.ssh/id_ed25519", "role": "agent"}]
    return {
        "default": base,
        "other-domain": {**base, "domain": "travel.example.org",
                         "acme_email": "certs@travel.example.org",
                         "apps": {**base["apps"], "host": "gateway.travel.example.org"}},
        "several-nodes": {**base, "hosts": several},
        "loki": {**base, "monitoring": {"loki": True}},
    }


@pytest.mark.parametrize("name", list(variants()))
def test_the_whole_stack_validates(name: str) -> None:
    need_crd_schemas()
    ctx = ctx_of(variants()[name])
    report = validate_context(ctx)
    assert report.problems == []
    rendered = sum(len(m.render(ctx).documents) for m in components.modules())
    assert len(report.checked) >= rendered
    assert all(c.schema != "none" for c in report.checked)
    assert SUMMARY.match(report.summary())
    assert report.seconds < 20  # "a few seconds"; generous for a loaded CI machine
    sources = {c.doc.source.split("/")[0] for c in report.checked}
    assert {"gitops:clusters", "secrets"} <= sources  # the layout and the secret templates
    kinds = {c.doc.kind for c in report.checked if c.doc.source.startswith("gitops:")}
    assert {"HelmRelease", "HelmRepository", "Kustomization"} <= kinds
    # every kind the stack emits has a deliberately broken case in test_validate_schemas
    assert {c.doc.kind for c in report.checked} <= {case[0] for case in BROKEN}


def test_a_broken_layout_object_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    need_crd_schemas()
    from tasks.stack import gitops

    real = gitops.build

    def broken(ctx: Mapping[str, Any], bundles: Any = None) -> Any:
        built = real(ctx, bundles)
        built.documents = [
            Document(d.source, edit(d.obj, ("spec", "interval"), "10 minutes"))
            if d.kind == "HelmRelease" and d.name == "strimzi" else d for d in built.documents]
        return built

    monkeypatch.setattr(gitops, "build", broken)
    report = validate_context(ctx_of(default_data()))
    assert report.problems == [
        "gitops:clusters/vps/kafka/helmrelease-strimzi.yaml: HelmRelease strimzi:"
        ' spec.interval: must match ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$; got "10 minutes"']


def test_every_secret_read_needs_a_template(monkeypatch: pytest.MonkeyPatch) -> None:
    need_crd_schemas()
    ctx = ctx_of(default_data())
    docs = [Document("manifests/apps/x.yaml", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "app"},
        "spec": {"env": [{"valueFrom": {"secretKeyRef": {"name": "mongo", "key": "uri"}}}]}})]
    problems, checked = run.validate_secrets(ctx, docs, [], run.default_store())
    assert "secrets/: Secret app/mongo: read by the stack, but no secrets/*.template.yaml"\
        " describes it" in problems
    assert {c.doc.kind for c in checked} == {"Secret"}


def write_inventory(tmp_path: Path, data: Mapping[str, Any]) -> Path:
    key = tmp_path / "id_test"
    key.write_text("not a real key; only its existence is checked\n")
    hosts = [{**h, "key_file": str(key)} for h in data["hosts"]]
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({**data, "hosts": hosts}))
    return path


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", "validate", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)


def test_inv_validate_on_an_inventory_file(tmp_path: Path) -> None:
    need_crd_schemas()
    proc = inv("-i", str(write_inventory(tmp_path, default_data())), "--verbose")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    match = SUMMARY.match(lines[-1])
    assert match, lines[-1]
    checked = [line for line in lines
               if line.startswith("checked ") and not line.startswith("checked chart:")]
    releases = [line for line in checked if ": Release " in line]
    assert len(checked) - len(releases) == int(match[1])
    assert "checked helm-values/strimzi.yaml: Release strimzi [strimzi/strimzi-kafka-operator"\
        " 0.47.0 in kafka]" in releases
    assert lines[-2].startswith("time: render ")


def test_a_bad_inventory_exits_2(tmp_path: Path) -> None:
    proc = inv("-i", str(write_inventory(tmp_path, {**default_data(), "domain": "not a"})))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: inventory.yaml: domain: expected ")


def test_problems_exit_1_after_one_line_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    report = run.Report(problems=["a.yaml: ConfigMap x: data: expected object"],
                        timings={"render": 0.5, "validate": 0.25})
    monkeypatch.setattr("tasks.validate.validate_context", lambda ctx: report)
    with pytest.raises(Exit) as exc:
        validate_task(Context(), inventory=str(write_inventory(tmp_path, default_data())))
    assert exc.value.code == 1
    assert capsys.readouterr().out.splitlines() == [
        "a.yaml: ConfigMap x: data: expected object",
        "validated 0 objects from 0 files in 0.75s: 1 problem"]


# the orchestration, with stand-in components ---------------------------------------------

def component(name: str, docs: list[Document], *, fails: bool = False,
              checks: list[str] | None = None) -> types.ModuleType:
    module = types.ModuleType(f"fake_{name}")
    module.NAME = name  # type: ignore[attr-defined]

    def render(ctx: Mapping[str, Any]) -> Bundle:
        if fails:
            raise UserError(f"manifests/{name}/x.yaml:3: unknown value ${{nope}}")
        return Bundle(documents=list(docs))

    module.render = render  # type: ignore[attr-defined]
    if checks is not None:
        def hook(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
            assert bundle.documents == docs
            return list(checks)
        module.checks = hook  # type: ignore[attr-defined]
    return module


def test_render_errors_hooks_and_schema_problems_are_all_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    need_crd_schemas()
    docs = valid_documents()
    topic = find(docs, "KafkaTopic")
    broken = Document(SOURCE, edit(topic.obj, ("spec", "partitions"), 0))
    others = [d for d in docs if d is not topic]
    fake = [component("base", others, checks=[]),
            component("broken", [], fails=True),
            component("kafka", [broken], checks=[
                f"{SOURCE}: KafkaTopic travel-generation.progress: spec.replicas: must be <="
                " broker count 1"])]
    monkeypatch.setattr(components, "modules", lambda: fake)
    monkeypatch.setattr(run, "gitops_layout", lambda bundles, ctx: (None, []))
    monkeypatch.setattr(run, "validate_secrets", lambda *args, **kwargs: ([], []))
    report = validate_context({})
    assert report.problems == [
        "component broken: manifests/broken/x.yaml:3: unknown value ${nope}",
        f"{SOURCE}: KafkaTopic travel-generation.progress: spec.partitions: must be >= 1;"
        " got 0",
        f"{SOURCE}: KafkaTopic travel-generation.progress: spec.replicas: must be <= broker"
        " count 1"]
    assert len(report.checked) == len(docs)
    assert report.summary().endswith(": 3 problems")


def test_helm_lint_problems_name_the_chart(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        helm.helm_binary()
    except UserError:
        pytest.skip("helm is not installed (.ci/install-helm)")
    chart = tmp_path / "apps"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: apps\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n"
        "  a: {{ .Values.replicas | quote }}\n")
    monkeypatch.setattr(run, "APPS_CHART", chart)
    monkeypatch.setattr(run, "chart_values", lambda ctx: {"replicas": 2})
    assert run.lint_chart({}) == []
    (chart / "templates" / "cm.yaml").write_text("{{ .Values.nope.deeper }}\n")
    lines = run.lint_chart({})
    assert lines and all(line.startswith("charts/apps: helm lint: ") for line in lines)
    assert any("[ERROR]" in line and "templates/cm.yaml" in line for line in lines), lines


def test_without_crd_schemas_each_missing_file_is_one_line(tmp_path: Path) -> None:
    """A clone without ../shared (nor pulled charts, whose CRDs would give the schemas):
    one line per schema file, over bundles and layout."""
    report = validate_context(ctx_of(default_data()),
                              store=SchemaStore(dirs=[(".cache/crd-schemas", tmp_path)]),
                              charts_cache=tmp_path / "charts",
                              charts_lock=tmp_path / "charts.lock.yaml")
    assert report.problems, "custom kinds must fail without their schemas"
    assert all(": no JSON schema " in p and "fill the cache: " in p for p in report.problems)
    files = [p.split(": no JSON schema ")[1].split(" ")[0] for p in report.problems]
    assert len(files) == len(set(files))
    assert "kustomize.toolkit.fluxcd.io/kustomization_v1.json" in files  # sync + layers


def test_a_render_error_is_reported_without_its_consequences() -> None:
    need_crd_schemas()
    data = {**default_data(), "apps": {"api_gateway": {"replicas": 2}}}  # no images
    report = validate_context(ctx_of(data))
    assert report.problems
    assert all(p.startswith("component apps: inventory.yaml: apps.") for p in report.problems)
    assert report.checked  # the other components were still validated
