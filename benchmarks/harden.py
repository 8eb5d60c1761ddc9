#!/usr/bin/env python3
"""Benchmark host.harden on a fresh lab VM: a full harden, then a no-op re-run.

Reports wall time and SSH round trips of each (the figures quoted in README.md). With
``--lynis``, Lynis (Debian's package) audits the stock VM before the harden and the
hardened one after it, and its hardening index is reported for both.
Usage: .venv/bin/python benchmarks/harden.py [--keep] [--name bench] [--lynis]
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
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


LYNIS_INSTALL = ("sudo -n sh -c 'command -v lynis >/dev/null || (apt-get update -qq &&"
                 " DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
                 " --no-install-recommends lynis >/dev/null)'")
LYNIS_AUDIT = ("sudo -n sh -c 'lynis audit system --quick --no-colors >/dev/null 2>&1;"
               " grep -E \"^(hardening_index|suggestion|warning)\\[?\\]?=\""
               " /var/log/lynis-report.dat'")


def on_vm(name: str, command: str) -> str:
    """``command`` on the lab VM as admin, through ``inv lab.ssh`` (host key checked)."""
    proc = subprocess.run([sys.executable, "-m", "invoke", "lab.ssh", "--name", name, "--",
                           command], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise SystemExit(f"on the VM: {command[:60]}: exit {proc.returncode}:"
                         f" {proc.stderr.strip()[-300:]}")
    return proc.stdout


def lynis(name: str) -> tuple[int, int, int, float]:
    """Lynis's hardening index, suggestions and warnings, and the audit's seconds."""
    on_vm(name, LYNIS_INSTALL)
    start = time.monotonic()
    report = on_vm(name, LYNIS_AUDIT)
    seconds = time.monotonic() - start
    found = re.search(r"^hardening_index=(\d+)$", report, re.M)
    if found is None:
        raise SystemExit(f"no hardening_index in Lynis's report: {report[-300:]}")
    suggestions = len(re.findall(r"^suggestion\[\]=", report, re.M))
    warnings = len(re.findall(r"^warning\[\]=", report, re.M))
    return int(found.group(1)), suggestions, warnings, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", default="bench")
    parser.add_argument("--keep", action="store_true", help="keep the VM afterwards")
    parser.add_argument("--lynis", action="store_true",
                        help="Lynis's hardening index before and after (slow under TCG)")
    args = parser.parse_args()
    up = lab.up(args.name, fresh=True, say=lambda line: print(f"[lab] {line}"))
    inventory = up.paths.dir / "inventory.yaml"
    audits = []
    try:
        if args.lynis:
            audits.append(("stock image", *lynis(args.name)))
        rows = [("fresh harden", *measure(inventory)),
                ("no-op re-run", *measure(inventory)),
                ("plan mode (--check), converged", *measure(inventory, check=True))]
        if args.lynis:
            audits.append(("after host.harden", *lynis(args.name)))
    finally:
        if not args.keep:
            lab.down(args.name, say=lambda line: print(f"[lab] {line}"))
    print(f"\nhost.harden on a lab VM (boot to SSH {up.boot_seconds:.0f}s)\n")
    print("| run | wall time | SSH round trips | steps |")
    print("|---|---|---|---|")
    for label, seconds, trips, counts in rows:
        print(f"| {label} | {seconds:.1f} s | {trips} | {counts['ok']} ok,"
              f" {counts['changed']} changed |")

    if audits:
        print("\n| Lynis (`lynis audit system --quick`) | hardening index | suggestions |"
              " warnings | audit time |")
        print("|---|---|---|---|---|")
        for label, index, suggestions, warnings, seconds in audits:
            print(f"| {label} | {index} | {suggestions} | {warnings} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
