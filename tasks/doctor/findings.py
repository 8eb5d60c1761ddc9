"""What ``inv doctor`` reports: one :class:`Finding` per check, shown on one screen.

A finding is a check's name, its status (ok, warn, fail, skipped), one detail line and,
unless it is ok, one line saying what to do. The screen is aligned and at most
:data:`WIDTH` columns (a long detail wraps under itself); ``--json`` prints the same
findings as a list. Exit code: 1 when any finding failed, else 0 (warnings allowed).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

from tasks.engine.text import escape

WIDTH = 100
NAME_WIDTH = 28  # at most; the widest check name otherwise
DETAIL_CAP = 400


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    #: What to do about it ("" when ok).
    fix: str = ""

    def __post_init__(self) -> None:
        # Details quote hosts, files and tools: never let one forge or garble a line.
        object.__setattr__(self, "detail", escape(self.detail, DETAIL_CAP))
        object.__setattr__(self, "fix", escape(self.fix, DETAIL_CAP))


def ok(check: str, detail: str) -> Finding:
    return Finding(check, Status.OK, detail)


def warn(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, Status.WARN, detail, fix)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, Status.FAIL, detail, fix)


def skipped(check: str, why: str) -> Finding:
    return Finding(check, Status.SKIPPED, why)


def exit_code(findings: Sequence[Finding]) -> int:
    return 1 if any(f.status is Status.FAIL for f in findings) else 0


def summary(findings: Sequence[Finding]) -> str:
    counts = [f"{sum(1 for f in findings if f.status is s)} {s.value}" for s in Status]
    verdict = "not ready" if exit_code(findings) else "ready"
    return f"{', '.join(counts)}: {verdict}"


def _wrapped(first: str, text: str, indent: int, width: int) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=first,
                         subsequent_indent=" " * indent, break_long_words=True,
                         break_on_hyphens=False) or [first.rstrip()]


def screen(findings: Sequence[Finding], width: int = WIDTH) -> list[str]:
    """The findings as aligned lines of at most ``width`` columns, then the summary."""
    lines: list[str] = []
    column = min(NAME_WIDTH, max((len(f.check) for f in findings), default=0))
    indent = 8 + column + 1
    for f in findings:
        name = f.check if len(f.check) <= column else f.check[:column - 3] + "..."
        head = f"{f.status.value:<7} {name:<{column}} "
        lines += _wrapped(head, f.detail, indent, width)
        if f.fix:
            lines += _wrapped(" " * indent + "fix: ", f.fix, indent + 5, width)
    lines.append(summary(findings))
    return lines


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps([{**asdict(f), "status": f.status.value} for f in findings], indent=2)
