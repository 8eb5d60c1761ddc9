"""Run steps against a target: gather facts in batches, apply only what differs, verify.

Round trips: one batch of facts for all steps up front; a converged target costs
nothing more. Each step that changes something costs one round trip to apply and one to
re-read facts, and that re-read also covers every later step, so their view is fresh.

Guarded steps (SSH access, the firewall) run inside a guard's window: the guard is armed
before the first guarded change, every script of the window goes through
:meth:`Guard.wrap` (on hosts: pushing the dead-man deadline forward), and once the last
guarded step is done the guard confirms access and stands down. When the guard reports
that the target rolled back meanwhile, the guarded steps are planned again from fresh
facts instead of failing on a half-restored state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tasks.engine.command import Command
from tasks.engine.errors import CommandFailed, UserError
from tasks.engine.facts import Fact, FactError, Facts
from tasks.engine.report import Activity, Reporter, Status, StepOutcome, Summary
from tasks.engine.shell import progress, script
from tasks.engine.step import Change, Step
from tasks.engine.target import OnOutput, Result, Target, gather

#: How many times a run re-plans after the target rolled back before it gives up.
MAX_REPLANS = 2


class RolledBack(Exception):
    """The target restored its previous access settings while the run was going on."""

    def __init__(self, when: str) -> None:
        super().__init__(f"the host rolled back its access settings at {when}")
        self.when = when


class Guard(Protocol):
    """A safety net around access changes (the dead-man switch on hosts)."""

    def arm(self) -> str:
        """Prepare to roll back; returns a line for the operator."""
        ...

    def wrap(self, script: str) -> str:
        """``script`` as it must run while armed (keeping the safety net alive)."""
        ...

    def rolled_back(self, result: Result) -> str | None:
        """When a wrapped script found that the target rolled back: the time it did."""
        ...

    def confirm(self) -> str:
        """Prove access still works and stand down; raises UserError if it does not,
        :class:`RolledBack` if the target rolled back before."""
        ...

    def state(self) -> str:
        """One true line about the safety net now: armed until T, fired at T, disarmed."""
        ...


@dataclass
class _Guarded:
    """The target as seen inside the guard's window: every script wrapped."""

    target: Target
    guard: Guard

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def round_trips(self) -> int:
        return self.target.round_trips

    def run(self, script: str, *, timeout: float | None = None,
            on_output: OnOutput | None = None) -> Result:
        result = self.target.run(self.guard.wrap(script), timeout=timeout,
                                 on_output=on_output)
        when = self.guard.rolled_back(result)
        if when is not None:
            raise RolledBack(when)
        return result

    def exec(self, command: Command, *, on_output: OnOutput | None = None) -> Result:
        return self.run(command.as_script(), timeout=command.timeout, on_output=on_output)

    def upload(self, local: Path, remote: str, *, on_output: OnOutput | None = None) -> None:
        self.target.upload(local, remote, on_output=on_output)


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
    changes, so their plan may shrink once earlier steps really ran. Round trips are
    counted by whoever owns the target (``summary.add_round_trips``), not here.
    """
    return _Run(target, steps, check, reporter, summary, guard).run()


class _Run:
    def __init__(self, target: Target, steps: Sequence[Step], check: bool,
                 reporter: Reporter, summary: Summary, guard: Guard | None) -> None:
        self.target, self.steps, self.check = target, steps, check
        self.reporter, self.summary, self.guard = reporter, summary, guard
        guarded = [i for i, s in enumerate(steps) if s.guarded]
        self.first_guarded = guarded[0] if guarded else -1
        self.last_guarded = guarded[-1] if guarded else -1
        self.armed = False
        self.facts: Facts | None = None

    @property
    def via(self) -> Target:
        return _Guarded(self.target, self.guard) if self.armed and self.guard else self.target

    def run(self) -> bool:
        started = time.monotonic()
        outcomes: list[tuple[int, StepOutcome]] = []
        index, replans, ok = 0, 0, True
        while index < len(self.steps):
            step = self.steps[index]
            t0 = time.monotonic()
            count = 0
            with self.reporter.working(self.target.name, step.name) as activity:
                try:
                    status, details, count = self._step(index, step, activity)
                except RolledBack as event:
                    replans += 1
                    self.armed, self.facts = False, None
                    if replans > MAX_REPLANS:
                        status, details, ok = Status.FAILED, [
                            f"{event}; it kept rolling back ({replans} times): check the"
                            " host's journal (journalctl -t stack-deadman)"], False
                    else:
                        self.reporter.note(self.target.name, f"{event} (dead-man switch):"
                                           " planning the access steps again from fresh"
                                           " facts")
                        outcomes = [(i, o) for i, o in outcomes if i < self.first_guarded]
                        index = self.first_guarded
                        continue
                except (CommandFailed, FactError, UserError) as exc:
                    status, details, ok = Status.FAILED, [str(exc)], False
            outcome = StepOutcome(self.target.name, step.name, status,
                                  time.monotonic() - t0, details, step_id=step.id,
                                  changes=count)
            outcomes.append((index, outcome))
            self.reporter.step(outcome)
            if not ok:
                for later, rest in enumerate(self.steps[index + 1:], index + 1):
                    skipped = StepOutcome(self.target.name, rest.name, Status.SKIPPED, 0.0,
                                          step_id=rest.id)
                    outcomes.append((later, skipped))
                    self.reporter.step(skipped)
                if self.armed and self.guard is not None:
                    self.reporter.note(self.target.name, self.guard.state())
                break
            index += 1
        self.summary.outcomes.extend(o for _, o in outcomes)
        if self.facts is not None:
            self.summary.last_facts[self.target.name] = self.facts
        self.summary.seconds += time.monotonic() - started
        return ok

    def _step(self, index: int, step: Step, activity: Activity
              ) -> tuple[Status, list[str], int]:
        """The step's status, its detail lines and how many changes it made or plans."""
        if self.facts is None:
            self.facts = self._gather(self.steps[index:], activity)
        changes = step.plan(self.facts)
        details = [c.summary for c in changes]
        if not changes:
            status = Status.OK
            details = step.notes(self.facts)
        elif self.check:
            status = Status.WOULD_CHANGE
            if step.guarded and self.guard is not None and not self.armed:
                details.append("(a dead-man switch would guard this change)")
        else:
            if step.guarded and self.guard is not None and not self.armed:
                activity.now("arming the dead-man switch")
                self.reporter.note(self.target.name, self.guard.arm())
                self.armed = True
            self._apply(step, changes, activity)
            self.facts = self._gather(self.steps[index:], activity)
            activity.now("verifying")
            problems = step.verify(self.facts)
            if problems:
                raise CommandFailed(f"{step.name}: verification", 1, "; ".join(problems))
            status = Status.CHANGED
        if self.armed and index >= self.last_guarded and self.guard is not None:
            activity.now("confirming with a new SSH login")
            self.reporter.note(self.target.name, self.guard.confirm())
            self.armed = False
        return status, details, len(changes)

    def _gather(self, steps: Sequence[Step], activity: Activity) -> Facts:
        """One round trip for the facts of ``steps``; timed in verbose output."""
        start = time.monotonic()
        wanted = _facts_for(steps)
        activity.now(f"reading {len(wanted)} facts")
        facts = gather(self.via, wanted)
        if self.reporter.verbose:
            self.reporter.note(self.target.name, f"read {len(wanted)} facts in"
                                                 f" {time.monotonic() - start:.2f}s"
                                                 " (1 round trip)")
        return facts

    def _apply(self, step: Step, changes: list[Change], activity: Activity) -> None:
        """Shell changes in one round trip per run of consecutive ones; commands one by
        one, in order."""
        activity.now("applying")
        for item in (u for c in changes for u in c.uploads):
            activity.now(f"uploading {item.local.name}")
            self.via.upload(item.local, item.remote, on_output=activity.saw)
        pending: list[Change] = []
        for change in [*changes, None]:
            if change is not None and not change.commands:
                pending.append(change)
                continue
            if pending:
                body = script(progress(c.summary) + c.script for c in pending)
                result = self.via.run(body, on_output=activity.saw)
                if not result.ok:
                    raise CommandFailed(f"{step.name}: applying", result.rc,
                                        result.stderr or result.stdout)
                pending = []
            if change is None:
                break
            for command in change.commands:
                activity.now(change.summary)
                result = self.via.exec(command, on_output=activity.saw)
                if result.rc not in command.ok_codes:
                    raise CommandFailed(f"{step.name}: {change.summary}", result.rc,
                                        result.stderr or result.stdout)
