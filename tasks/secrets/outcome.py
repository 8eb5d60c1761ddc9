"""What a secrets task reports: one line per thing it looked at, then a summary."""

from __future__ import annotations

from dataclasses import dataclass, field

OK = "ok"
CHANGED = "changed"
WOULD_CHANGE = "would change"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    status: str
    subject: str
    detail: str = ""
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        head = f"{self.status:<12} {self.subject}" + (f": {self.detail}" if self.detail else "")
        return [head, *(f"{'':<12} {note}" for note in self.notes)]


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def lines(self) -> list[str]:
        return [line for o in self.outcomes for line in o.lines()]

    def summary(self, task: str) -> str:
        changed, would = self.count(CHANGED), self.count(WOULD_CHANGE)
        if not changed and not would:
            return f"{task}: nothing to change ({self.count(OK)} ok)"
        if would:
            return f"{task}: {would} would change, {self.count(OK)} ok (plan mode: nothing changed)"
        return f"{task}: {changed} changed, {self.count(OK)} ok"
