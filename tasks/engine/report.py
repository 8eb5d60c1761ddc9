"""What the operator sees: one line per step, a live line while a step runs, a summary.

While a step works, :meth:`Reporter.working` keeps the operator informed: on a terminal a
live line (target, step, elapsed time, what it is doing now: the latest line the host
printed, e.g. apt's current package) redrawn every second; elsewhere (CI logs) a plain
line every :data:`PLAIN_EVERY` seconds. The final per-step lines are unchanged.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

from tasks.engine.text import printable

PLAIN_EVERY = 30.0  # seconds between progress lines when output is not a terminal
LIVE_EVERY = 1.0    # redraw period of the live line on a terminal
QUIET_FOR = 3.0     # steps shorter than this never show a progress line


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
    #: Stable identity of the step (``Step.id``), independent of its display name.
    step_id: str = ""
    #: How many changes it made (changed) or would make (would change).
    changes: int = 0
    #: Planned from the repository alone, without facts (plan mode before the target
    #: can be read: the cluster layers before K3s is installed).
    from_repository: bool = False


@dataclass
class LayerRun:
    """One layer of a multi-layer run (``deploy.all``): its steps' outcomes and time."""

    name: str
    outcomes: list[StepOutcome] = field(default_factory=list)
    seconds: float = 0.0
    #: False when the run stopped at an earlier layer: this one did not run.
    ran: bool = True
    #: The one line that stopped the layer before or between its steps (a UserError).
    error: str = ""

    @property
    def result(self) -> str:
        """ok, changed, failed, skipped (did not run) or planned (would change)."""
        statuses = {o.status for o in self.outcomes}
        if self.error or Status.FAILED in statuses:
            return "failed"
        if not self.ran:
            return "skipped"
        if Status.WOULD_CHANGE in statuses:
            return "planned"
        return "changed" if Status.CHANGED in statuses else "ok"

    @property
    def changes(self) -> int:
        return sum(o.changes for o in self.outcomes)

    @property
    def from_repository(self) -> bool:
        return any(o.from_repository for o in self.outcomes)


@dataclass
class Summary:
    outcomes: list[StepOutcome] = field(default_factory=list)
    #: SSH round trips (or local runs) per target, added up over every layer of the run.
    round_trips: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: The freshest facts each target's last converge read (after its last change), for
    #: after-hooks that need a value without another round trip.
    last_facts: dict[str, Any] = field(default_factory=dict)
    #: The layers of a multi-layer run, in order (see :meth:`layer`); empty otherwise.
    layers: list[LayerRun] = field(default_factory=list)

    @contextmanager
    def layer(self, name: str) -> Iterator[LayerRun]:
        """Record the outcomes and wall time of the block as layer ``name``."""
        run, first, started = LayerRun(name), len(self.outcomes), time.monotonic()
        try:
            yield run
        finally:
            run.outcomes = self.outcomes[first:]
            run.seconds = time.monotonic() - started
            self.layers.append(run)

    def not_run(self, name: str) -> None:
        """Layer ``name`` did not run (an earlier one failed)."""
        self.layers.append(LayerRun(name, ran=False))

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    def add_round_trips(self, target: str, count: int) -> None:
        self.round_trips[target] = self.round_trips.get(target, 0) + count

    def status_of(self, target: str, step_id: str) -> Status | None:
        """The latest outcome of step ``step_id`` on ``target`` (None if it did not run)."""
        for outcome in reversed(self.outcomes):
            if outcome.target == target and outcome.step_id == step_id:
                return outcome.status
        return None

    @property
    def failed(self) -> bool:
        return self.count(Status.FAILED) > 0


class Activity:
    """What a running step is doing now; updated from output as it arrives."""

    def __init__(self, target: str, step: str) -> None:
        self.target, self.step = target, step
        self.started = time.monotonic()
        self.doing = ""
        self._lock = threading.Lock()

    def now(self, doing: str) -> None:
        """Set what the step is doing (a phase, or a line the target printed)."""
        text = printable(doing.strip(), 120)
        if text:
            with self._lock:
                self.doing = text

    def saw(self, line: str) -> None:
        """A line of output from the target: the latest one tells what is going on."""
        self.now(line)

    def line(self) -> str:
        with self._lock:
            doing = self.doing
        elapsed = _duration(time.monotonic() - self.started)
        return f"{self.target:<10} {'running':<12} {self.step} ({elapsed})" + (
            f": {doing}" if doing else "")


class Reporter:
    """Prints step outcomes as they happen. ``verbose`` adds round-trip counts."""

    def __init__(self, out: TextIO | None = None, *, verbose: bool = False,
                 live: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.verbose = verbose
        tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.live = tty if live is None else live
        self._colors = {
            Status.OK: "32", Status.CHANGED: "33", Status.WOULD_CHANGE: "36",
            Status.FAILED: "31", Status.SKIPPED: "90",
        } if tty else {}
        self._lock = threading.RLock()
        self._shown = False  # a live line is on screen (terminal only)

    def _paint(self, status: Status) -> str:
        label = f"{status.value:<12}"
        code = self._colors.get(status)
        return f"\033[{code}m{label}\033[0m" if code else label

    def _print(self, text: str) -> None:
        with self._lock:
            if self._shown:
                self.out.write("\r\033[K")
                self._shown = False
            print(text, file=self.out)
            self.out.flush()

    def step(self, outcome: StepOutcome) -> None:
        lines = [f"{outcome.target:<10} {self._paint(outcome.status)} {outcome.step:<44}"
                 f" {outcome.seconds:6.2f}s"]
        lines += [f"{'':<23} - {line}" for line in outcome.details]
        self._print("\n".join(lines))

    def plain(self, text: str) -> None:
        """A line as it is (a row of a table)."""
        self._print(text)

    def note(self, target: str, message: str) -> None:
        self._print(f"{target:<10} {'':<12} {message}")

    @contextmanager
    def working(self, target: str, step: str) -> Iterator[Activity]:
        """Show progress of a step that takes a while, until the block ends."""
        activity = Activity(target, step)
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(activity, stop), daemon=True)
        ticker.start()
        try:
            yield activity
        finally:
            stop.set()
            ticker.join()
            with self._lock:
                if self._shown:
                    self.out.write("\r\033[K")
                    self.out.flush()
                    self._shown = False

    def _tick(self, activity: Activity, stop: threading.Event) -> None:
        if stop.wait(QUIET_FOR):
            return
        period = LIVE_EVERY if self.live else PLAIN_EVERY
        # Plain output: the first line after PLAIN_EVERY, then one every PLAIN_EVERY.
        if not self.live and stop.wait(max(0.0, PLAIN_EVERY - QUIET_FOR)):
            return
        while True:
            with self._lock:
                if self.live:
                    width = _width(self.out)
                    self.out.write("\r\033[K" + activity.line()[:width - 1])
                    self._shown = True
                else:
                    print(activity.line(), file=self.out)
                self.out.flush()
            if stop.wait(period):
                return

    def summary(self, summary: Summary) -> None:
        parts = [f"{summary.count(s)} {s.value}" for s in Status
                 if summary.count(s) or s in (Status.OK, Status.CHANGED, Status.FAILED)]
        line = f"summary: {', '.join(parts)} in {summary.seconds:.1f}s"
        if self.verbose:
            trips = ", ".join(f"{t}: {n}" for t, n in summary.round_trips.items())
            line += f"; round trips: {trips or 'none'}"
        self._print(line)


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _width(out: TextIO) -> int:
    import os

    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 100
