#!/usr/bin/env python3
"""Benchmark host.harden on a fresh lab VM: a full harden, then a no-op re-run.

Reports wall time and SSH round trips of each (the figures quoted in README.md).
Usage: .venv/bin/python benchmarks/harden.py [--keep] [--name bench]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks import harden
from tasks.cli import session
from tasks.engine.report import Reporter, Status
from tasks.labvm import lab


def measure(inventory: Path, *, check: bool = False) -> tuple[float, int, dict[str, int]]:
    s = session(str(inventory), check=check)
    s.reporter = Reporter(io.StringIO())
    start = time.monotonic()
    harden.run(s)
    elapsed = time.monotonic() - start
    if s.summary.failed:
        raise SystemExit(f"harden failed: {[o.details for o in s.summary.outcomes]}")
    counts = {st.value: s.summary.count(st) for st in (Status.OK, Status.CHANGED)}
    return elapsed, sum(s.summary.round_trips.values()), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", default="bench")
    parser.add_argument("--keep", action="store_true", help="keep the VM afterwards")
    args = parser.parse_args()
    up = lab.up(args.name, fresh=True, say=lambda line: print(f"[lab] {line}"))
    inventory = up.paths.dir / "inventory.yaml"
    try:
        rows = [("fresh harden", *measure(inventory)),
                ("no-op re-run", *measure(inventory)),
                ("plan mode (--check), converged", *measure(inventory, check=True))]
    finally:
        if not args.keep:
            lab.down(args.name, say=lambda line: print(f"[lab] {line}"))
    print(f"\nhost.harden on a lab VM (boot to SSH {up.boot_seconds:.0f}s)\n")
    print("| run | wall time | SSH round trips | steps |")
    print("|---|---|---|---|")
    for label, seconds, trips, counts in rows:
        print(f"| {label} | {seconds:.1f} s | {trips} | {counts['ok']} ok,"
              f" {counts['changed']} changed |")


if __name__ == "__main__":
    main()
