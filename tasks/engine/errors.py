"""Errors that end a run with one clear line instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the operator can fix: bad input, unreachable host, refused safety check.

    The message is printed as one line (or one line per entry in ``lines``) and the
    process exits with ``exit_code``. Nothing is half-applied when it is raised before
    the first change; steps raise :class:`StepFailed` once changes are under way.
    """

    exit_code = 1

    def __init__(self, message: str, *, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or [message]


class InventoryError(UserError):
    """The inventory is invalid; no connection was opened."""

    exit_code = 2


class ConnectionFailed(UserError):
    """SSH could not be established (timeout, auth, host key)."""


class CommandFailed(Exception):
    """A remote or local command exited non-zero where success was required."""

    def __init__(self, what: str, exit_code: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
        super().__init__(f"{what}: exit {exit_code}: {tail}")
        self.exit_code = exit_code
        self.stderr = stderr
