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


_TELLING = ("error", "fail", "not ready", "conflict", "denied", "refused", "invalid")


def error_tail(stderr: str) -> str:
    """The last line of an error output, after the last earlier line that says what went
    wrong when the last one does not (helm's "context deadline exceeded" comes after
    "resource Deployment/x not ready"; kubectl's conflicts end with a docs URL)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no error output"
    last = lines[-1]
    if any(word in last.lower() for word in _TELLING[1:]) and "http" not in last:
        return last[:300]
    earlier = [line for line in lines[:-1] if any(w in line.lower() for w in _TELLING)]
    return f"{earlier[-1][:240]} ... {last[:160]}" if earlier else last[:300]


class CommandFailed(Exception):
    """A remote or local command exited non-zero where success was required."""

    def __init__(self, what: str, exit_code: int, stderr: str) -> None:
        super().__init__(f"{what}: exit {exit_code}: {error_tail(stderr)}")
        self.exit_code = exit_code
        self.stderr = stderr
