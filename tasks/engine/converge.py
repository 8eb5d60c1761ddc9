"""Run steps against a target: gather facts in batches, apply only what differs, verify.

Round trips: one batch of facts for all steps up front; a converged target costs
nothing more. Each step that changes something costs one round trip to apply and one to
re-read facts, and that re-read also covers every later step, so their view is fresh.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from tasks.engine.errors import CommandFailed, UserError
from tasks.engine.facts import Fact, FactError, Facts
from tasks.engine.report import Reporter, Status, StepOutcome, Summary
from tasks.engine.shell import script
from tasks.engine.step import Change, Step
from tasks.engine.target import Target, gather


class Guard(Protocol):
    """A safety net around access changes (the dead-man switch on hosts)."""

    def arm(self) -> str:
        """Prepare to roll back; returns a line for the operator."""
        ...

    def confirm(self) -> str:
        """Prove access still works and stand down; raises UserError if it does not."""
        ...


def _facts_for(steps: Sequence[Step]) -> list[Fact[Any]]:
    seen: dict[str, Fact[Any]] = {}
    for step in steps:
        for fact in step.facts():
            seen.setdefault(fact.key, fact)
    return list(seen.values())


def converge(target: Target, steps: Sequence[Step], *, check: bool, reporter: Reporter,
             summary: Summary, guard: Guard | None = None) -> bool:
    """Converge ``target``; returns False when a step failed (later steps are skipped).

    In check mode only fact commands run and every difference is reported as
    ``would change``. Later steps see the facts as they are *now*, before earlier
    changes, so their plan may shrink once earlier steps really ran.
    """
    started = time.monotonic()
    last_guarded = max((i for i, s in enumerate(steps) if s.guarded), default=-1)
    armed = False
    facts: Facts | None = None
    ok = True
    trips_before = target.round_trips
    for index, step in enumerate(steps):
        t0 = time.monotonic()
        details: list[str] = []
        try:
            if facts is None:
                facts = _gather(target, steps[index:], reporter)
                t0 = time.monotonic()
            changes = step.plan(facts)
            if not changes:
                status = Status.OK
            elif check:
                status, details = Status.WOULD_CHANGE, [c.summary for c in changes]
                if step.guarded and guard is not None and not armed:
                    details.append("(a dead-man switch would guard this change)")
            else:
                if step.guarded and guard is not None and not armed:
                    reporter.note(target.name, guard.arm())
                    armed = True
                _apply(target, step, changes)
                facts = _gather(target, steps[index:], reporter)
                problems = step.verify(facts)
                if problems:
                    raise CommandFailed(f"{step.name}: verification", 1, "; ".join(problems))
                status, details = Status.CHANGED, [c.summary for c in changes]
            if armed and index >= last_guarded:
                reporter.note(target.name, guard.confirm() if guard else "")
                armed = False
        except (CommandFailed, FactError, UserError) as exc:
            status, details, ok = Status.FAILED, [str(exc)], False
        outcome = StepOutcome(target.name, step.name, status, time.monotonic() - t0, details)
        summary.outcomes.append(outcome)
        reporter.step(outcome)
        if not ok:
            for rest in steps[index + 1:]:
                skipped = StepOutcome(target.name, rest.name, Status.SKIPPED, 0.0)
                summary.outcomes.append(skipped)
                reporter.step(skipped)
            if armed:
                reporter.note(target.name, "dead-man switch stays armed: access changes roll"
                              " back unless a re-run confirms them")
            break
    summary.round_trips[target.name] = (summary.round_trips.get(target.name, 0)
                                        + target.round_trips - trips_before)
    summary.seconds += time.monotonic() - started
    return ok


def _gather(target: Target, steps: Sequence[Step], reporter: Reporter) -> Facts:
    """One round trip for the facts of ``steps``; timed in verbose output."""
    start = time.monotonic()
    wanted = _facts_for(steps)
    facts = gather(target, wanted)
    if reporter.verbose:
        reporter.note(target.name, f"read {len(wanted)} facts in"
                                   f" {time.monotonic() - start:.2f}s (1 round trip)")
    return facts


def _apply(target: Target, step: Step, changes: list[Change]) -> None:
    body = script(c.script for c in changes)
    result = target.run(body)
    if not result.ok:
        raise CommandFailed(f"{step.name}: applying", result.rc, result.stderr or result.stdout)
