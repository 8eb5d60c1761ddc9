#!/usr/bin/env python3
"""Benchmark the cluster layers (ingress.certs, flux.bootstrap) through the STAND-IN
kubectl and helm (tests/standins/: no cluster here): empty to converged, then a converged
re-run. Reports wall time and the kubectl and helm calls of each (the figures quoted in
README.md). Usage: .venv/bin/python benchmarks/cluster_layers.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.standins.harness import Standins
from tests.unit.test_platform_standins import layer_steps, run


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        root = Path(folder)
        standins = Standins.start(root / "standins", patch)
        tools = standins.tools()
        layers = layer_steps(standins, tools, root / "charts")
        rows = []
        for label in ("empty to converged", "converged re-run"):
            standins.clear_calls()
            t0 = time.monotonic()
            ok, outcomes, text = run(standins, tools, layers)
            seconds = time.monotonic() - t0
            if not ok:
                raise SystemExit(text)
            calls = Counter(c.binary for c in standins.calls())
            changed = sum(1 for _, s in outcomes if s.value == "changed")
            rows.append((label, seconds, calls["kubectl"], calls["helm"], changed,
                         len(outcomes)))
    print("| run | wall time | kubectl calls | helm calls | steps changed |")
    print("|---|---|---|---|---|")
    for label, seconds, kubectl, helm, changed, total in rows:
        print(f"| {label} | {seconds:.1f} s | {kubectl} | {helm} | {changed} of {total} |")


if __name__ == "__main__":
    main()
