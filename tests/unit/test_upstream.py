"""inv validate on the upstream charts: pulled archives rendered with our values.

A real chart (tests/unit/upstream_charts.py: a subchart as a folder, one as a nested
archive under an alias, a CRD in crds/ and one rendered by a template) is packaged into
a cache folder with its own lock file, rendered by the real helm, and checked through
the product code: unknown value keys, custom resources against the chart's CRDs, pinned
images, skip lines without archives, refusal of an archive whose digest differs.
"""

from __future__ import annotations

import functools
import json
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from invoke.context import Context
from test_validate_stack import SUMMARY, default_data, write_inventory
from upstream_charts import CHART, VERSION, WIDGET_CRD, Pulled, pull, tgz
from validate_fixtures import need_crd_schemas

from tasks.engine.errors import UserError
from tasks.stack import components, helm, upstream
from tasks.stack.render import Bundle, Document, Release
from tasks.stack.upstream import keys
from tasks.stack.upstream.archive import read_chart
from tasks.stack.validate import run, validate_context
from tasks.stack.validate.schemas import SchemaStore
from tasks.tooling.fetch import sha256_file
from tasks.validate import validate as validate_task

VALUES: dict[str, Any] = {
    "image": {"tag": "2.0.1"},
    "sub": {"replicas": 2, "deep": {"x": 3}},  # the folder subchart's values
    "inner": {"knobs": {"a": 2}, "level": 3},  # the nested archive's, under its alias
    "extra": {"anything": {"goes": 1}},  # an empty map by default: free-form
    "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}},
    "widget": {"size": 3, "colour": "red"},
}
LABEL = "helm-values/widgets.yaml"
OWN_WIDGET = "manifests/shop/widget.yaml"


def need_helm() -> None:
    try:
        helm.helm_binary()
    except UserError as exc:
        pytest.skip(str(exc))


def with_values(**changes: Any) -> dict[str, Any]:
    return {**VALUES, **changes}


# --- the archive and its values ---------------------------------------------------------

def test_the_archive_is_read_with_both_kinds_of_subchart(tmp_path: Path) -> None:
    tree = read_chart(pull(tmp_path).archive)
    assert (tree.name, tree.version) == (CHART, VERSION)
    assert sorted(tree.subcharts) == ["inner", "sub"]
    assert (tree.subcharts["inner"].name, tree.subcharts["inner"].version) == ("nested",
                                                                                "0.2.0")
    assert tree.subcharts["sub"].values == {"replicas": 1, "deep": {"x": 1}}
    assert list(tree.all_crds()) == [("widgets/crds/widget.yaml", WIDGET_CRD)]


def test_every_known_key_passes(tmp_path: Path) -> None:
    pulled = pull(tmp_path)
    assert keys.unknown_keys(pulled.release(VALUES), read_chart(pulled.archive)) == []


def test_each_unknown_key_is_one_line(tmp_path: Path) -> None:
    pulled = pull(tmp_path)
    values = with_values(image={"tga": "2.0.1"},  # a typo
                         sub={"replicsa": 2, "deep": {"x": 1}},  # a typo in the subchart
                         inner={"knobs": {"b": 1}},  # not one of the subchart's knobs
                         nested={"level": 2})  # the subchart's name, not its alias
    assert keys.unknown_keys(pulled.release(values), read_chart(pulled.archive)) == [
        f"{LABEL}: image.tga: not a value of chart widgets 1.2.3 (a typo is a silent no-op)",
        f"{LABEL}: sub.replicsa: not a value of chart widgets 1.2.3 (a typo is a silent"
        " no-op)",
        f"{LABEL}: inner.knobs.b: not a value of chart widgets 1.2.3 (a typo is a silent"
        " no-op)",
        f"{LABEL}: nested.level: not a value of chart widgets 1.2.3 (a typo is a silent"
        " no-op)"]


def test_pass_through_keys_are_per_chart_and_whole_keys() -> None:
    assert keys.passed_through("kube-prometheus-stack", "grafana.grafana.ini.users.x")
    assert not keys.passed_through("loki", "grafana.grafana.ini.users.x")
    assert not keys.passed_through("kube-prometheus-stack", "grafana.grafana.initial")
    assert all(len(reason) > 20 for reason in keys.PASS_THROUGH.values())


# --- rendering --------------------------------------------------------------------------

def render(pulled: Pulled, values: dict[str, Any]) -> upstream.Upstream:
    return upstream.run([pulled.release(values)], {}, cache=pulled.cache, lock=pulled.lock)


def test_a_valid_chart_renders_clean_with_its_crd_schemas(tmp_path: Path) -> None:
    need_helm()
    found = render(pull(tmp_path), VALUES)
    assert (found.problems, found.skipped) == ([], [])
    assert sorted((d.source, d.kind, d.name) for d in found.documents) == [
        ("chart:widgets-1.2.3/charts/inner/templates/crd.yaml", "CustomResourceDefinition",
         "gadgets.example.org"),
        ("chart:widgets-1.2.3/templates/deployment.yaml", "Deployment", "widgets"),
        ("chart:widgets-1.2.3/templates/widget.yaml", "Widget", "widgets")]
    [widget] = [d for d in found.documents if d.kind == "Widget"]
    assert widget.obj["spec"] == {"size": 3, "colour": "red"}
    assert {file: source for file, (source, _) in found.schemas.items()} == {
        "example.org/widget_v1.json": "chart widgets 1.2.3 (widgets/crds/widget.yaml)",
        "example.org/gadget_v1.json":
            "chart widgets 1.2.3 (charts/inner/templates/crd.yaml)"}
    assert found.schemas["example.org/gadget_v1.json"][1]["properties"]["spec"] == {
        "type": "object", "properties": {"volts": {"type": "integer"}},
        "additionalProperties": False}


@pytest.mark.parametrize(("tag", "problem"), [
    ("latest", "registry.example.org/widgets:latest: :latest is not pinned; use a version"
               " or digest"),
    ("", "registry.example.org/widgets: has an empty tag: pin a version or digest"),
])
def test_an_unpinned_image_is_reported(tmp_path: Path, tag: str, problem: str) -> None:
    need_helm()
    pulled = pull(tmp_path)
    found = render(pulled, with_values(image={"tag": tag}))
    assert found.problems == [
        "chart:widgets-1.2.3/templates/deployment.yaml: Deployment widgets:"
        f" containers[0].image: {problem} (rule: image)"]


def test_requests_and_limits_on_what_the_chart_renders(tmp_path: Path) -> None:
    need_helm()
    # (helm merges our values into the chart's: null removes the chart's default)
    found = render(pull(tmp_path), with_values(resources={"limits": {"cpu": "1",
                                                                     "memory": None}}))
    assert found.problems == [
        "chart:widgets-1.2.3/templates/deployment.yaml: Deployment widgets:"
        " containers[0].resources.limits.memory: missing (rule: limits)"]


def test_a_failing_template_is_one_line_after_the_unknown_keys(tmp_path: Path) -> None:
    need_helm()
    values = with_values(image="registry.example.org/widgets:2", colour="red")
    found = render(pull(tmp_path), values)
    assert found.problems[0] == (f"{LABEL}: colour: not a value of chart widgets 1.2.3 (a"
                                 " typo is a silent no-op)")
    [line] = found.problems[1:]
    assert line.startswith(f"chart widgets 1.2.3: helm template with {LABEL} failed: ")
    assert found.rendered == []


def test_not_pulled_is_a_skip_line(tmp_path: Path) -> None:
    pulled = pull(tmp_path)
    pulled.archive.unlink()
    assert (render(pulled, VALUES).skipped, render(pulled, VALUES).problems) == (
        ["skipped upstream render of widgets 1.2.3: not pulled (run inv charts.pull)"], [])
    pulled.lock.write_text("charts: []\n")  # pulled but never locked: the same
    tgz_again = pull(tmp_path / "other").archive.read_bytes()
    pulled.archive.write_bytes(tgz_again)
    assert render(pulled, VALUES).skipped == [
        "skipped upstream render of widgets 1.2.3: not pulled (run inv charts.pull)"]


def test_a_digest_mismatch_is_an_error(tmp_path: Path) -> None:
    pulled = pull(tmp_path)
    locked = sha256_file(pulled.archive)
    pulled.archive.write_bytes(tgz({"widgets/Chart.yaml": "name: widgets\n"}))
    found = render(pulled, VALUES)
    assert found.skipped == []
    assert found.problems == [
        f"chart widgets 1.2.3: {pulled.archive}: sha256 {sha256_file(pulled.archive)} differs"
        f" from {pulled.lock} ({locked}): refused; delete it and run inv charts.pull"]


def test_a_corrupted_archive_is_an_error(tmp_path: Path) -> None:
    pulled = pull(tmp_path, data=b"\x1f\x8b not really gzip")
    [line] = render(pulled, VALUES).problems
    assert line.startswith(f"chart widgets 1.2.3: {pulled.archive}: not a readable chart"
                           " archive (")


# --- inv validate: our objects and the chart's, against the chart's CRDs ----------------

def own_widget(spec: dict[str, Any]) -> Document:
    return Document(OWN_WIDGET, {"apiVersion": "example.org/v1", "kind": "Widget",
                                 "metadata": {"name": "mine", "namespace": "shop"},
                                 "spec": spec})


def fake_component(pulled: Pulled, values: dict[str, Any], docs: list[Document]
                   ) -> types.ModuleType:
    module = types.ModuleType("fake_shop")
    module.NAME = "shop"  # type: ignore[attr-defined]
    namespace = Document("manifests/shop/namespace.yaml", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    release: Release = pulled.release(values)

    def render_bundle(ctx: Mapping[str, Any]) -> Bundle:
        return Bundle(documents=[namespace, *docs], releases=[release])

    module.render = render_bundle  # type: ignore[attr-defined]
    return module


@pytest.fixture
def shared(tmp_path: Path) -> SchemaStore:
    """A fallback schema directory whose Widget schema knows nothing of spec.size."""
    path = tmp_path / "shared" / "example.org" / "widget_v1.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"colour": {"type": "string"}},
        "additionalProperties": False}}}))
    return SchemaStore(dirs=[("../shared/schemas/crds", tmp_path / "shared")])


def validate(monkeypatch: pytest.MonkeyPatch, pulled: Pulled, store: SchemaStore,
             values: dict[str, Any], docs: list[Document]) -> run.Report:
    monkeypatch.setattr(components, "modules", lambda: [fake_component(pulled, values, docs)])
    monkeypatch.setattr(run, "gitops_layout", lambda bundles, ctx: (None, []))
    monkeypatch.setattr(run, "validate_secrets", lambda *args, **kwargs: ([], []))
    return validate_context({}, store=store, charts_cache=pulled.cache,
                            charts_lock=pulled.lock)


def test_custom_resources_follow_the_pulled_chart_crd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: SchemaStore) -> None:
    need_helm()
    pulled = pull(tmp_path / "cache")
    report = validate(monkeypatch, pulled, shared, VALUES, [own_widget({"size": 2})])
    assert report.problems == []
    schemas = {c.doc.label: c.schema for c in [*report.checked, *report.upstream]
               if c.doc.kind == "Widget"}
    assert schemas == {
        f"{OWN_WIDGET}: Widget mine": "chart widgets 1.2.3 (widgets/crds/widget.yaml)",
        "chart:widgets-1.2.3/templates/widget.yaml: Widget widgets":
            "chart widgets 1.2.3 (widgets/crds/widget.yaml)"}
    assert report.summary().startswith("validated 2 objects from 2 files and 3 from 1"
                                       " upstream charts in ")


def test_custom_resources_violating_the_chart_crd_are_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: SchemaStore) -> None:
    need_helm()
    pulled = pull(tmp_path / "cache")
    report = validate(monkeypatch, pulled, shared, with_values(widget={"size": 0}),
                      [own_widget({"size": "two"})])
    assert report.problems == [
        f"{OWN_WIDGET}: Widget mine: spec.size: expected integer, got string \"two\"",
        "chart:widgets-1.2.3/templates/widget.yaml: Widget widgets: spec.size: must be >= 1;"
        " got 0"]


def test_without_the_archive_the_fallback_schemas_are_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: SchemaStore) -> None:
    pulled = pull(tmp_path / "cache")
    pulled.archive.unlink()
    report = validate(monkeypatch, pulled, shared, VALUES, [own_widget({"size": 2})])
    assert report.skipped == [
        "skipped upstream render of widgets 1.2.3: not pulled (run inv charts.pull)"]
    assert report.problems == [f"{OWN_WIDGET}: Widget mine: spec.size: unknown field"]
    [checked] = [c for c in report.checked if c.doc.kind == "Widget"]
    assert checked.schema == "../shared/schemas/crds/example.org/widget_v1.json"
    assert report.ok is False and report.upstream == []


# --- inv validate's output ----------------------------------------------------------------

SKIPPED = [f"skipped upstream render of {chart}: not pulled (run inv charts.pull)"
           for chart in ("flux2 2.16.4", "cert-manager v1.13.1", "kube-prometheus-stack 85.4.0",
                         "loki 18.11.0", "alloy 1.11.1", "strimzi-kafka-operator 0.47.0")]


@pytest.mark.parametrize(("loki", "wanted"), [
    (False, [s for s in SKIPPED if not s.split(" render of ")[1].startswith(("loki", "alloy"))]),
    (True, SKIPPED),
])
def test_inv_validate_says_what_it_skipped_and_exits_0(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        loki: bool, wanted: list[str]) -> None:
    need_crd_schemas()
    empty = functools.partial(validate_context, charts_cache=tmp_path / "charts",
                              charts_lock=tmp_path / "charts.lock.yaml")
    monkeypatch.setattr("tasks.validate.validate_context", empty)
    data = {**default_data(), "monitoring": {"loki": loki}}
    validate_task(Context(), inventory=str(write_inventory(tmp_path, data)))  # no Exit
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-1] == wanted
    assert SUMMARY.match(lines[-1]), lines[-1]


def test_inv_validate_verbose_names_each_rendered_chart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    need_helm()
    pulled = pull(tmp_path / "cache")
    report = run.Report(rendered=[upstream.Rendered(pulled.release(VALUES), pulled.archive,
                                                    [own_widget({})], 2)])
    monkeypatch.setattr("tasks.validate.validate_context", lambda ctx: report)
    validate_task(Context(), inventory=str(write_inventory(tmp_path, default_data())),
                  verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"rendered widgets 1.2.3 ({pulled.archive}) with {LABEL}: 1 object,"
                        " schemas of 2 custom kinds from its CRDs")


def test_a_chart_crd_names_its_versions_when_another_is_asked(tmp_path: Path) -> None:
    need_helm()
    found = render(pull(tmp_path), VALUES)
    store = SchemaStore(dirs=[("empty", tmp_path / "none")]).with_inline(found.schemas)
    lookup = store.lookup("example.org/v2", "Widget")
    assert (lookup.validator, lookup.problem) == (
        None, "unknown kind: example.org has no version v2 of Widget (schemas exist for v1)")
    assert store.lookup("example.org/v1", "Widget").source == (
        "chart widgets 1.2.3 (widgets/crds/widget.yaml)")
