"""A previous container's last log lines: error lines first, then the tail.

Logs may contain anything (an attacker's request line, terminal escapes): lines are
kept as text here, capped, and escaped where they are shown (tasks/engine/text.py).
Colour codes (SGR ``ESC[...m``, which Nest's logger writes) are dropped first: they
carry no information, and every other control character stays escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ERROR = re.compile(r"error|exception|fatal|panic|refused", re.I)
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_FRAME = re.compile(r"^\s+at \S")  # a stack frame ("    at Socket.onError (...)")
MAX_ERRORS = 5
MAX_TAIL = 10
LINE_CAP = 300  # characters kept of one line (the display cuts again)


@dataclass(frozen=True)
class LogLines:
    errors: tuple[str, ...] = ()  # the last lines that look like errors, in order
    tail: tuple[str, ...] = ()  # the last lines not among the errors, in order
    unavailable: str = ""  # why there is no previous log (it was not kept, ...)
    source: str = "previous log"  # or "termination message" (the log's tail, kept)

    @property
    def telling(self) -> str | None:
        """The error line that says most: the last one with a message after a colon
        ("Caused by: KafkaJSConnectionError: Connection error: ..."), else the last."""
        said = [line for line in self.errors if ": " in line] or list(self.errors)
        return said[-1] if said else None


def select(log: str, source: str = "previous log") -> LogLines:
    """Up to :data:`MAX_ERRORS` error lines (the last ones; stack frames are not error
    lines, though "onError" is in them), then the last :data:`MAX_TAIL` other lines,
    each cut to :data:`LINE_CAP` characters."""
    lines = [_COLOUR.sub("", line).rstrip()[:LINE_CAP] for line in log.splitlines()]
    lines = [line for line in lines if line.strip()]
    error_at = [i for i, line in enumerate(lines)
                if ERROR.search(line) and not _FRAME.match(line)][-MAX_ERRORS:]
    shown = set(error_at)
    others = [i for i in range(len(lines)) if i not in shown][-MAX_TAIL:]
    return LogLines(tuple(lines[i] for i in error_at), tuple(lines[i] for i in others),
                    source=source)
