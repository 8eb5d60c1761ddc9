"""Facts: read-only observations of a target, gathered many at a time.

A :class:`Fact` is a read-only shell command plus a parser. Facts are gathered in
batches: :func:`batch_script` concatenates the commands of many facts into one script
whose output :func:`split_output` cuts back into one ``(stdout, exit code)`` per fact,
so a converged host is inspected in a single SSH round trip.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from tasks.engine.command import Command

T = TypeVar("T")


@dataclass(frozen=True)
class Raw:
    """What a fact's command printed on stdout, its exit code, and (a capped) stderr."""

    stdout: str
    rc: int
    stderr: str = ""


@dataclass(frozen=True, eq=False)
class Fact(Generic[T]):
    """A named read-only command and the parser of its output.

    ``key`` identifies the fact in a batch and in caches, so parameterised facts (one per
    file, say) must put the parameter in the key. ``command`` must not change anything.
    A fact whose input is secret (a decrypted Secret to compare) is an ``exec`` command
    instead (argv + stdin, run on its own, never part of a script text).
    """

    key: str
    command: str
    parse: Callable[[Raw], T] = field(repr=False)
    exec: Command | None = field(default=None, repr=False)


class FactError(Exception):
    """A fact's output could not be understood (the message names the fact)."""


class Facts:
    """Parsed fact values of one target, looked up by :class:`Fact`."""

    def __init__(self, raw: Mapping[str, Raw]) -> None:
        self._raw = dict(raw)
        self._parsed: dict[str, Any] = {}

    def __contains__(self, fact: Fact[Any]) -> bool:
        return fact.key in self._raw

    @overload
    def __getitem__(self, fact: Fact[T]) -> T: ...
    @overload
    def __getitem__(self, fact: str) -> Raw: ...
    def __getitem__(self, fact: Fact[T] | str) -> T | Raw:
        if isinstance(fact, str):
            return self._raw[fact]
        if fact.key not in self._parsed:
            try:
                raw = self._raw[fact.key]
            except KeyError:
                raise KeyError(f"fact {fact.key} was not gathered") from None
            try:
                self._parsed[fact.key] = fact.parse(raw)
            except Exception as exc:  # any parser bug or odd output: one line, no traceback
                why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else (
                    type(exc).__name__)
                err = raw.stderr.strip().splitlines()[-1][:200] if raw.stderr.strip() else ""
                raise FactError(f"cannot read fact {fact.key} (exit {raw.rc}): {why}"
                                + (f"; stderr: {err}" if err else "")) from exc
        value: T = self._parsed[fact.key]
        return value

    def keys(self) -> set[str]:
        return set(self._raw)


_MARK = "@@stack-fact@@"
STDERR_CAP = 2000  # bytes of each fact's stderr kept (the tail says why it failed)


def batch_script(facts: Iterable[Fact[Any]], token: str | None = None) -> tuple[str, str]:
    """One script printing every fact's output between markers; returns (script, token).

    Each command runs in a subshell with stdin from /dev/null; its exit code and the end
    of its stderr are recorded, so one failing fact never hides the others and a fact
    that fails says why.
    """
    token = token or secrets.token_hex(8)
    facts = [f for f in facts if f.exec is None]
    lines = ['__e=$(mktemp 2>/dev/null) || __e=/dev/null',
             'trap \'[ "$__e" = /dev/null ] || rm -f "$__e"\' EXIT']
    for fact in facts:
        begin = f"{_MARK}{token}@@begin@@{fact.key}"
        lines.append(f"printf '%s\\n' '{begin}'")
        lines.append(f'( {fact.command}\n) </dev/null 2>"$__e"; __rc=$?')
        lines.append(f"printf '\\n%s%s\\n' '{_MARK}{token}@@end@@' \"$__rc\"")
        lines.append(f'tail -c {STDERR_CAP} "$__e" 2>/dev/null; : >"$__e" 2>/dev/null')
        lines.append(f"printf '\\n%s\\n' '{_MARK}{token}@@stderr-end@@'")
    return "\n".join(lines) + "\n", token


def split_output(stdout: str, token: str) -> dict[str, Raw]:
    """Inverse of :func:`batch_script`: ``{fact key: Raw}``."""
    pattern = re.compile(
        re.escape(f"{_MARK}{token}@@begin@@") + r"(?P<key>[^\n]*)\n(?P<out>.*?)\n"
        + re.escape(f"{_MARK}{token}@@end@@") + r"(?P<rc>\d+)\n(?P<err>.*?)\n"
        + re.escape(f"{_MARK}{token}@@stderr-end@@") + r"\n",
        re.S,
    )
    return {m["key"]: Raw(m["out"], int(m["rc"]), m["err"]) for m in pattern.finditer(stdout)}


# Small parsers shared by many facts ---------------------------------------------------

def text(raw: Raw) -> str:
    """The output as-is (empty when the command failed)."""
    return raw.stdout if raw.rc == 0 else ""


def lines(raw: Raw) -> list[str]:
    return [line for line in text(raw).splitlines() if line.strip()]


def optional_text(raw: Raw) -> str | None:
    """Output when the command succeeded (a file's content, say), else None."""
    return raw.stdout if raw.rc == 0 else None


def file_fact(path: str) -> Fact[str | None]:
    """A file's content, or None when it does not exist or cannot be read."""
    from tasks.engine.shell import q

    return Fact(f"file:{path}", f"cat {q(path)}", optional_text)
