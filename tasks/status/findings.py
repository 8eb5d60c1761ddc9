"""What ``inv status`` found: typed findings, one screen of them, or JSON; the exit code.

A :class:`Finding` is one check: its area (``host vps1``, ``nodes``, ``releases``...), the
thing checked, a state, one detail line and, when it is not healthy, what to do. The
screen groups them by area, in the order they were checked, one aligned line each (a
problem's detail wrapped, up to three lines, its fix below), never wider than
:data:`WIDTH` columns; the last line says healthy or not, and why. Everything that came
from a host or the cluster is escaped (tasks/engine/text.py), so a message cannot forge
a line or drive the terminal.

Exit code: 0 when nothing is unhealthy or unknown (warnings are shown, not failed), 1
otherwise. A check that could not be made is ``unknown``, never healthy.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum

from tasks.engine.text import escape

WIDTH = 100
#: The name column is as wide as the longest name, up to this.
NAME_WIDTH = 38
#: A problem's detail takes up to this many lines; its fix goes below, from here.
DETAIL_LINES = 3
FIX_INDENT = " " * 8


class State(Enum):
    OK = "ok"
    WARN = "warn"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return {"ok": "ok", "warn": "WARN", "unhealthy": "FAIL", "unknown": "??"}[self.value]

    @property
    def failing(self) -> bool:
        return self in (State.UNHEALTHY, State.UNKNOWN)


@dataclass(frozen=True)
class Finding:
    area: str  # "host vps1", "nodes", "releases", "workloads", "certificates", ...
    name: str  # what was checked: "ufw", "cert-manager/cert-manager", "Kafka kafka/my-cluster"
    state: State
    detail: str  # one line: what was seen
    fix: str = ""  # one line: what to do (empty when healthy)

    def as_json(self) -> dict[str, str]:
        return {**asdict(self), "state": self.state.value}


def ok(area: str, name: str, detail: str) -> Finding:
    return Finding(area, name, State.OK, detail)


def bad(area: str, name: str, detail: str, fix: str) -> Finding:
    return Finding(area, name, State.UNHEALTHY, detail, fix)


def warn(area: str, name: str, detail: str, fix: str) -> Finding:
    return Finding(area, name, State.WARN, detail, fix)


def unknown(area: str, name: str, detail: str, fix: str = "") -> Finding:
    return Finding(area, name, State.UNKNOWN, detail, fix)


def exit_code(findings: Sequence[Finding]) -> int:
    return 1 if not findings or any(f.state.failing for f in findings) else 0


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _middle(text: str, width: int) -> str:
    """A name cut in its middle: both ends tell (``monitoring/prometheus...-prometheus-0``)."""
    if len(text) <= width:
        return text
    head = (width - 3) // 2
    return text[:head] + "..." + text[len(text) - (width - 3 - head):]


def _wrapped(text: str, first: str, indent: str, most: int) -> list[str]:
    """``first`` + ``text`` wrapped at :data:`WIDTH` under ``indent``, at most ``most``
    lines (the last cut with ``...``)."""
    rows = textwrap.wrap(text, WIDTH - len(indent), break_on_hyphens=False) or [""]
    if len(rows) > most:
        rows = [*rows[:most - 1], _cut(" ".join(rows[most - 1:]), WIDTH - len(indent))]
    return [_cut(first + rows[0], WIDTH), *(_cut(indent + r, WIDTH) for r in rows[1:])]


def lines(findings: Sequence[Finding]) -> list[str]:
    """The screen: per area a header, then ``STATE  NAME  DETAIL`` aligned (a long detail
    wrapped under itself), the fix below it; last the verdict."""
    out: list[str] = []
    areas = list(dict.fromkeys(f.area for f in findings))
    width = min(NAME_WIDTH, max((len(escape(f.name, 120)) for f in findings), default=0))
    indent = " " * (2 + 5 + 1 + width + 1)
    for area in areas:
        out.append(escape(area, 60))
        for f in (f for f in findings if f.area == area):
            name = _middle(escape(f.name, 120), width)
            head = f"  {f.state.label:<5} {name:<{width}} "
            detail = escape(f.detail, 400)
            if f.state is State.OK:
                out.append(_cut(head + detail, WIDTH))
                continue
            out += _wrapped(detail, head, indent, DETAIL_LINES)
            if f.fix:
                out += _wrapped(f"fix: {escape(f.fix, 300)}", FIX_INDENT, FIX_INDENT + "     ",
                                2)
    out.append(verdict(findings))
    return out


def verdict(findings: Sequence[Finding]) -> str:
    failing = [f for f in findings if f.state.failing]
    warned = [f for f in findings if f.state is State.WARN]
    warnings = f", {len(warned)} warning{'s' if len(warned) != 1 else ''}" if warned else ""
    if not findings:
        return "unhealthy: nothing was checked"
    if not failing:
        return f"healthy: {len(findings)} checks{warnings}"
    names = ", ".join(f"{f.name} ({f.area})" for f in failing[:3])
    more = f" and {len(failing) - 3} more" if len(failing) > 3 else ""
    return _cut(f"unhealthy: {len(failing)} of {len(findings)} checks{warnings}: {names}{more}",
                WIDTH)


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps({"healthy": exit_code(findings) == 0,
                       "findings": [f.as_json() for f in findings]}, indent=2,
                      ensure_ascii=True)
