"""The end of a multi-layer run: a table of every layer's steps, and the same for machines.

:func:`table` is plain text within :data:`WIDTH` columns: one row per step (layer, step,
result, changes, time), a row per layer with its totals, a row for a layer that did not
run, and the totals of the run. :func:`document` is the JSON document of ``--json``
(its keys are documented in README.md, "deploy.all"; :data:`DOCUMENT_VERSION` changes
when one is renamed or removed).
"""

from __future__ import annotations

from typing import Any

from tasks.engine.report import LayerRun, Status, StepOutcome, Summary

WIDTH = 100
DOCUMENT_VERSION = 1
REPOSITORY_NOTE = "cluster not reachable yet: planned from the repository, not from facts"
#: A step's result as the table and the document name it.
RESULTS = {Status.OK: "ok", Status.CHANGED: "changed", Status.WOULD_CHANGE: "planned",
           Status.FAILED: "failed", Status.SKIPPED: "skipped"}
_LAYER, _STEP, _RESULT, _CHANGES, _TIME = 18, 52, 8, 7, 9


def _row(layer: str, step: str, result: str, changes: str, seconds: str) -> str:
    if len(step) > _STEP:
        step = step[:_STEP - 3] + "..."
    return (f"{layer:<{_LAYER}} {step:<{_STEP}} {result:<{_RESULT}} {changes:>{_CHANGES}}"
            f" {seconds:>{_TIME}}").rstrip()


def _time(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 600 else f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"


def _step_label(layer: LayerRun, outcome: StepOutcome) -> str:
    many = len({o.target for o in layer.outcomes}) > 1
    return f"{outcome.target}: {outcome.step}" if many else outcome.step


def _layer_label(layer: LayerRun) -> str:
    if not layer.ran:
        return "(not run: an earlier layer failed)"
    if layer.error:
        return f"(stopped: {layer.error})"
    mark = " *" if layer.from_repository else ""
    return f"(layer: {len(layer.outcomes)} steps{mark})"


def table(summary: Summary) -> list[str]:
    """The final table of ``summary.layers``, one line per row (each within WIDTH)."""
    lines = [_row("layer", "step", "result", "changes", "time"), "-" * WIDTH]
    for layer in summary.layers:
        for outcome in layer.outcomes:
            lines.append(_row(layer.name, _step_label(layer, outcome),
                              RESULTS[outcome.status], str(outcome.changes),
                              _time(outcome.seconds)))
        lines.append(_row(layer.name, _layer_label(layer), layer.result, str(layer.changes),
                          _time(layer.seconds) if layer.ran else "-"))
        lines.append("")
    counts = totals(summary)
    said = ", ".join(f"{counts[r]} {r}" for r in RESULTS.values() if counts[r])
    lines += ["-" * WIDTH, _row("total", f"{counts['steps']} steps: {said or 'none'}",
                                overall(summary), str(counts["changes"]),
                                _time(sum(x.seconds for x in summary.layers)))]
    if any(x.from_repository for x in summary.layers):
        lines.append(f"* {REPOSITORY_NOTE}")
    return lines


def totals(summary: Summary) -> dict[str, int]:
    outcomes = [o for x in summary.layers for o in x.outcomes]
    counts = {r: sum(1 for o in outcomes if RESULTS[o.status] == r) for r in RESULTS.values()}
    return {"steps": len(outcomes), **counts, "changes": sum(o.changes for o in outcomes)}


def overall(summary: Summary) -> str:
    """The run's result: failed, planned, changed or ok (the worst of its layers)."""
    results = {x.result for x in summary.layers}
    for result in ("failed", "planned", "changed"):
        if result in results:
            return result
    return "ok"


def _step_doc(outcome: StepOutcome) -> dict[str, Any]:
    return {"target": outcome.target, "id": outcome.step_id, "name": outcome.step,
            "result": RESULTS[outcome.status], "changes": outcome.changes,
            "seconds": round(outcome.seconds, 3), "details": list(outcome.details)}


def _layer_doc(layer: LayerRun) -> dict[str, Any]:
    basis = None if not layer.ran or not layer.outcomes else (
        "repository" if layer.from_repository else "facts")
    return {"name": layer.name, "result": layer.result, "ran": layer.ran,
            "changes": layer.changes, "seconds": round(layer.seconds, 3),
            "planned_from": basis, "error": layer.error or None,
            "steps": [_step_doc(o) for o in layer.outcomes]}


def document(summary: Summary, *, check: bool) -> dict[str, Any]:
    """The machine-readable account of the run (``--json``)."""
    return {"version": DOCUMENT_VERSION, "mode": "check" if check else "apply",
            "result": overall(summary),
            "seconds": round(sum(x.seconds for x in summary.layers), 3),
            "totals": totals(summary), "round_trips": dict(summary.round_trips),
            "layers": [_layer_doc(x) for x in summary.layers]}
