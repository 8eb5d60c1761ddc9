"""What the operator sees: one line per step, then a summary."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TextIO


class Status(StrEnum):
    OK = "ok"
    CHANGED = "changed"
    WOULD_CHANGE = "would change"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class StepOutcome:
    target: str
    step: str
    status: Status
    seconds: float
    details: list[str] = field(default_factory=list)


@dataclass
class Summary:
    outcomes: list[StepOutcome] = field(default_factory=list)
    round_trips: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def failed(self) -> bool:
        return self.count(Status.FAILED) > 0


class Reporter:
    """Prints step outcomes as they happen. ``verbose`` adds round-trip counts."""

    def __init__(self, out: TextIO | None = None, *, verbose: bool = False) -> None:
        self.out = out or sys.stdout
        self.verbose = verbose
        color = hasattr(self.out, "isatty") and self.out.isatty()
        self._colors = {
            Status.OK: "32", Status.CHANGED: "33", Status.WOULD_CHANGE: "36",
            Status.FAILED: "31", Status.SKIPPED: "90",
        } if color else {}

    def _paint(self, status: Status) -> str:
        label = f"{status.value:<12}"
        code = self._colors.get(status)
        return f"\033[{code}m{label}\033[0m" if code else label

    def step(self, outcome: StepOutcome) -> None:
        print(f"{outcome.target:<10} {self._paint(outcome.status)} {outcome.step:<44}"
              f" {outcome.seconds:6.2f}s", file=self.out)
        for line in outcome.details:
            print(f"{'':<23} - {line}", file=self.out)
        self.out.flush()

    def note(self, target: str, message: str) -> None:
        print(f"{target:<10} {'':<12} {message}", file=self.out)
        self.out.flush()

    def summary(self, summary: Summary) -> None:
        parts = [f"{summary.count(s)} {s.value}" for s in Status
                 if summary.count(s) or s in (Status.OK, Status.CHANGED, Status.FAILED)]
        line = f"summary: {', '.join(parts)} in {summary.seconds:.1f}s"
        if self.verbose:
            trips = ", ".join(f"{t}: {n}" for t, n in summary.round_trips.items())
            line += f"; round trips: {trips or 'none'}"
        print(line, file=self.out)
        self.out.flush()
