#!/usr/bin/env python3
"""Benchmark the whole cluster stack (ingress.certs, monitoring.install, kafka.deploy,
flux.bootstrap, apps.deploy) through deploy.all's own orchestration and the STAND-IN
kubectl and helm (tests/standins/: no cluster here), with real secrets (sops, age):
empty to converged, then a converged re-run. Per layer and in total: wall time, kubectl
and helm calls, steps changed (the figures quoted in README.md, "Performance").
Usage: .venv/bin/python benchmarks/stack.py
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks import deploy
from tasks.cli import Session
from tasks.engine.report import Status
from tests.standins.harness import Standins
from tests.unit.stack_standins import CLUSTER_LAYERS, Stack, stack

Row = tuple[str, float, int, int, int, int]  # layer, seconds, kubectl, helm, changed, steps


def measured(st: Stack, label: str) -> list[Row]:
    """One run of the cluster layers; a row per layer, then the total."""
    calls: dict[str, Counter[str]] = {}

    def counting(name: str, run: Callable[[Session], bool]) -> Callable[[Session], bool]:
        def wrapped(s: Session) -> bool:
            before = Counter(c.binary for c in st.standins.calls())
            try:
                return run(s)
            finally:
                calls[name] = Counter(c.binary for c in st.standins.calls()) - before
        return wrapped

    s, out = st.session()
    layers = [(name, counting(name, run))
              for name, run in deploy.select(only=",".join(CLUSTER_LAYERS))]
    t0 = time.monotonic()
    stopped = deploy.converge_stack(s, layers)
    seconds = time.monotonic() - t0
    if stopped is not None or s.summary.failed:
        raise SystemExit(out.getvalue())
    rows: list[Row] = []
    for layer in s.summary.layers:
        changed = sum(1 for o in layer.outcomes if o.status is Status.CHANGED)
        rows.append((f"{label}: {layer.name}", layer.seconds, calls[layer.name]["kubectl"],
                     calls[layer.name]["helm"], changed, len(layer.outcomes)))
    rows.append((f"**{label}: total**", seconds, sum(r[2] for r in rows),
                 sum(r[3] for r in rows), sum(r[4] for r in rows), sum(r[5] for r in rows)))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch, \
            contextlib.redirect_stdout(io.StringIO()):  # secrets.init's lines
        root = Path(folder)
        standins = Standins.start(root / "standins", patch)
        with stack(root, patch, standins) as st:
            rows = measured(st, "empty to converged") + measured(st, "converged re-run")
    print("| run: layer | wall time | kubectl calls | helm calls | steps changed |")
    print("|---|---|---|---|---|")
    for label, seconds, kubectl, helm, changed, total in rows:
        print(f"| {label} | {seconds:.1f} s | {kubectl} | {helm} | {changed} of {total} |")


if __name__ == "__main__":
    main()
