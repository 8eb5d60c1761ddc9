"""Commands: an argv list plus what goes on its stdin, never shell text.

Cluster steps change things with ``kubectl`` and ``helm`` on the operator's machine:
each change is a :class:`Command` run without a shell, with manifests and secrets on
stdin only, so nothing secret is ever in a process's argv or in a log line. ``shown()``
is what the operator sees (argv only; stdin is described by ``stdin_label``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from tasks.engine.shell import cmd, piped


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    #: Fed to the command's stdin (manifests, secrets); never shown or logged.
    stdin: bytes = b""
    #: What stdin holds, for the operator ("3 objects", "Secret grafana-admin").
    stdin_label: str = ""
    #: Seconds before the command is stopped (waits carry their own --timeout too).
    timeout: float | None = None
    #: Exit codes that count as success (``kubectl diff`` exits 1 when objects differ).
    ok_codes: tuple[int, ...] = (0,)

    def shown(self) -> str:
        text = shlex.join(self.argv)
        return f"{text} <{self.stdin_label}" if self.stdin_label else text

    def as_script(self) -> str:
        """The same command as shell text (for a host: stdin travels inside, base64)."""
        line = cmd(*self.argv)
        return piped(self.stdin, line) if self.stdin else f"{line} </dev/null\n"
