"""What the operator reads: one block per pod, its cause line first, then the evidence;
or, with ``--json``, a list of ``{pod, app, container, cause, ok, evidence}``.

Everything that came from the cluster (messages, log lines) is escaped and capped
(tasks/engine/text.py): a log line cannot forge an output line or drive the terminal.
The JSON is ASCII-only (every other character escaped) for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tasks.apps.diagnose.causes import Finding
from tasks.engine.text import escape

CAP = 200


def _termination(t: dict[str, Any]) -> str:
    signal = f", signal {t['signal']}" if t.get("signal") is not None else ""
    at = f" at {escape(t['finished_at'], 40)}" if t.get("finished_at") else ""
    reason = escape(t.get("reason") or "no reason", 60)
    return f"{reason}, exit code {t.get('exit_code')}{signal}{at}"


def block(f: Finding, namespace: str) -> list[str]:
    """The lines of one pod: ``<pod> (<app>): <cause>``, then indented evidence."""
    if f.pod == "-":
        lines = [f"app {f.app} in namespace {namespace}: {f.cause}"]
    else:
        app = f" ({f.app})" if f.app else ""
        lines = [f"{namespace}/{f.pod}{app}: {f.cause}"]
    e = f.evidence
    if f.container:
        state = [f"phase {e.get('phase') or '?'}"]
        waiting = e.get("waiting")
        if waiting:
            said = f" ({escape(waiting['message'], 160)})" if waiting.get("message") else ""
            state.append(f"waiting {escape(waiting['reason'], 60)}{said}")
        state.append(f"{e.get('restarts', 0)} restarts")
        lines.append(f"  container {f.container}: {', '.join(state)}")
    if "last_termination" in e:
        lines.append(f"  last termination: {_termination(e['last_termination'])}")
    if "unschedulable" in e:
        lines.append(f"  not scheduled: {escape(e['unschedulable'], CAP)}")
    for ref in e.get("references", []):
        lines.append(f"  unresolved: {escape(ref, CAP)}")
    for ev in e.get("events", []):
        times = f" x{ev['count']}" if ev.get("count", 1) > 1 else ""
        seen = f", last {escape(ev['last_seen'], 40)}" if ev.get("last_seen") else ""
        lines.append(f"  event {escape(ev['type'], 20)} {escape(ev['reason'], 40)}{times}"
                     f"{seen}: {escape(ev['message'], CAP)}")
    logs = e.get("logs")
    if logs and logs.get("unavailable"):
        lines.append(f"  previous log: unavailable ({escape(logs['unavailable'], CAP)})")
    elif logs:
        source = escape(logs.get("source") or "previous log", 40)
        lines.append(f"  {source} (error lines first, then the last lines):")
        lines += [f"    ! {escape(line, CAP)}" for line in logs.get("errors", [])]
        lines += [f"    | {escape(line, CAP)}" for line in logs.get("tail", [])]
    return lines


def text(findings: Sequence[Finding], namespace: str, examined: int) -> list[str]:
    out: list[str] = []
    for f in findings:
        out += [*block(f, namespace), ""]
    failing = [f.pod if f.pod != "-" else f"app {f.app} (no pod)" for f in findings
               if not f.ok]
    if not failing:
        out.append(f"every pod of ours in namespace {namespace} is Ready ({_pods(examined)})")
    else:
        out.append(f"needs attention: {', '.join(failing)} ({_pods(examined)} of ours in"
                   f" namespace {namespace} examined)")
    return out


def _pods(n: int) -> str:
    return f"{n} pod" if n == 1 else f"{n} pods"


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.as_json() for f in findings], indent=2, ensure_ascii=True)
