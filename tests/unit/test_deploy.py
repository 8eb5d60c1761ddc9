"""deploy.all: the layers and their order (what brings CRDs before what uses them), the
--only/--from options, the final table and JSON document, stopping at a failed layer."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, cast

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from tasks import apps, flux, ingress, k3s, kafka, monitoring
from tasks import harden as harden_layer
from tasks.cli import Session
from tasks.deploy import LAYERS, all_, converge_stack, select
from tasks.engine.errors import UserError
from tasks.engine.report import LayerRun, Reporter, Status, StepOutcome, Summary
from tasks.engine.table import document, table
from tasks.model.load import Loaded


def test_layers_run_in_dependency_order() -> None:
    assert [name for name, _ in LAYERS] == [
        "host.harden", "k3s.install", "ingress.certs", "monitoring.install", "kafka.deploy",
        "flux.bootstrap", "apps.deploy"]


def test_each_layer_is_the_task_of_its_name() -> None:
    assert [run for _, run in LAYERS] == [
        harden_layer.run, k3s.run, ingress.run, monitoring.install, kafka.run, flux.bootstrap,
        apps.deploy]


# --- choosing layers: --only, --from ----------------------------------------------------

def names(layers: list[tuple[str, object]]) -> list[str]:
    return [name for name, _ in layers]


def test_only_keeps_the_stacks_order_and_from_starts_at_a_layer() -> None:
    assert names(select(only="apps.deploy, ingress.certs")) == ["ingress.certs", "apps.deploy"]
    assert names(select(start="flux.bootstrap")) == ["flux.bootstrap", "apps.deploy"]
    assert names(select()) == names(LAYERS)


@pytest.mark.parametrize(("only", "start", "message"), [
    ("ingress.certs,nosuch", None, "unknown layer 'nosuch': the layers are host.harden,"
     " k3s.install, ingress.certs, monitoring.install, kafka.deploy, flux.bootstrap,"
     " apps.deploy"),
    (None, "k3s", "unknown layer 'k3s': the layers are host.harden, k3s.install,"
     " ingress.certs, monitoring.install, kafka.deploy, flux.bootstrap, apps.deploy"),
    (",", None, "--only needs a layer name (or several, comma-separated)"),
    ("apps.deploy", "k3s.install", "--only and --from do not go together: use one of them"),
])
def test_a_wrong_layer_option_is_one_line_and_exit_2(
        only: str | None, start: str | None, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exit) as exit_:
        all_(Context(), inventory="/nonexistent/inventory.yaml", only=only, from_=start)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"error: {message}\n")


# --- the final table ----------------------------------------------------------------------

def outcome(step: str, status: Status, changes: int, seconds: float,
            target: str = "cluster vps") -> StepOutcome:
    return StepOutcome(target, step, status, seconds, step_id=step, changes=changes)


def stopped_run() -> Summary:
    """k3s.install failed on its second step: two later layers did not run."""
    summary = Summary()
    summary.layers = [
        LayerRun("host.harden", [outcome("packages", Status.OK, 0, 0.42, "vps1"),
                                 outcome("sshd", Status.CHANGED, 2, 1.5, "vps1")], 2.25),
        LayerRun("k3s.install", [
            outcome("k3s: binary v1.33.5+k3s1 and its sha256, checked on a long line",
                    Status.CHANGED, 1, 12.0, "vps1"),
            outcome("k3s: service Ready", Status.FAILED, 0, 300.25, "vps1"),
            outcome("k3s: operator kubeconfig", Status.SKIPPED, 0, 0.0, "vps1")], 312.5),
        LayerRun("ingress.certs", ran=False), LayerRun("apps.deploy", ran=False)]
    return summary


def test_the_table_has_a_row_per_step_per_layer_and_the_totals() -> None:
    lines = table(stopped_run())
    assert lines == [
        "layer              step                                                 result"
        "   changes      time",
        "-" * 100,
        "host.harden        packages                                             ok"
        "             0      0.4s",
        "host.harden        sshd                                                 changed"
        "        2      1.5s",
        "host.harden        (layer: 2 steps)                                     changed"
        "        2      2.2s",
        "",
        "k3s.install        k3s: binary v1.33.5+k3s1 and its sha256, checked ... changed"
        "        1     12.0s",
        "k3s.install        k3s: service Ready                                   failed"
        "         0    300.2s",
        "k3s.install        k3s: operator kubeconfig                             skipped"
        "        0      0.0s",
        "k3s.install        (layer: 3 steps)                                     failed"
        "         1    312.5s",
        "",
        "ingress.certs      (not run: an earlier layer failed)                   skipped"
        "        0         -",
        "",
        "apps.deploy        (not run: an earlier layer failed)                   skipped"
        "        0         -",
        "",
        "-" * 100,
        "total              5 steps: 1 ok, 2 changed, 1 failed, 1 skipped        failed"
        "         3    314.8s",
    ]
    assert max(len(line) for line in lines) <= 100


def test_the_document_has_every_layer_and_step_under_stable_keys() -> None:
    doc = json.loads(json.dumps(document(stopped_run(), check=False)))
    assert sorted(doc) == ["layers", "mode", "result", "round_trips", "seconds", "totals",
                           "version"]
    assert (doc["version"], doc["mode"], doc["result"], doc["seconds"]) == (
        1, "apply", "failed", 314.75)
    assert doc["totals"] == {"steps": 5, "ok": 1, "changed": 2, "planned": 0, "failed": 1,
                             "skipped": 1, "changes": 3}
    assert [(x["name"], x["result"], x["ran"], x["changes"], x["planned_from"])
            for x in doc["layers"]] == [
        ("host.harden", "changed", True, 2, "facts"), ("k3s.install", "failed", True, 1, "facts"),
        ("ingress.certs", "skipped", False, 0, None), ("apps.deploy", "skipped", False, 0, None)]
    assert doc["layers"][0]["steps"][1] == {
        "target": "vps1", "id": "sshd", "name": "sshd", "result": "changed", "changes": 2,
        "seconds": 1.5, "details": []}


# --- the orchestration: stops at the first failed layer ----------------------------------

def test_a_failed_layer_stops_the_run_and_the_later_ones_are_not_run() -> None:
    ran: list[str] = []

    def layer(name: str, ok: bool = True, error: str = "") -> tuple[str, Any]:
        def run(s: Session) -> bool:
            ran.append(name)
            if error:
                raise UserError(error)
            s.summary.outcomes.append(outcome(f"{name} step", Status.CHANGED, 1, 0.0))
            return ok
        return name, run

    s = Session(Loaded(cast(Any, None), Path("/nonexistent")), reporter=Reporter(io.StringIO()))
    stopped = converge_stack(s, [layer("a"), layer("b", error="b: no secrets yet"),
                                 layer("c")])
    assert ran == ["a", "b"]
    assert stopped is not None and stopped.lines == ["b: no secrets yet"]
    assert [(x.name, x.result, x.error) for x in s.summary.layers] == [
        ("a", "changed", ""), ("b", "failed", "b: no secrets yet"), ("c", "skipped", "")]
    s = Session(Loaded(cast(Any, None), Path("/nonexistent")), reporter=Reporter(io.StringIO()))
    assert converge_stack(s, [layer("d", ok=False), layer("e")]) is None
    assert [(x.name, x.result) for x in s.summary.layers] == [("d", "changed"), ("e", "skipped")]


def test_a_plan_goes_on_after_a_layer_that_cannot_be_planned() -> None:
    ran: list[str] = []

    def layer(name: str, error: str = "") -> tuple[str, Any]:
        def run(s: Session) -> bool:
            ran.append(name)
            if error:
                raise UserError(error)
            return True
        return name, run

    s = Session(Loaded(cast(Any, None), Path("/nonexistent")), check=True,
                reporter=Reporter(io.StringIO()))
    stopped = converge_stack(s, [layer("a", error="a: no age key"), layer("b", error="b: x"),
                                 layer("c")])
    assert ran == ["a", "b", "c"]
    assert stopped is not None and stopped.lines == ["a: no age key"]
    assert [(x.name, x.result, x.error) for x in s.summary.layers] == [
        ("a", "failed", "a: no age key"), ("b", "failed", "b: x"), ("c", "ok", "")]
