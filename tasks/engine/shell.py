"""Building shell text safely.

Every argument that reaches a shell goes through :func:`q` (``shlex.quote``). Scripts are
sent to a host on stdin and run from a private temporary file, so neither file contents
nor secrets ever appear in a process's argv (see :mod:`tasks.engine.target`).
"""

from __future__ import annotations

import base64
import secrets
import shlex
from collections.abc import Iterable
from os import PathLike

Arg = str | int | PathLike[str]

#: Lines a script prints on stderr with this prefix report progress: the targets pass them
#: to the live display and drop them from the error text.
PROGRESS = "@@stack-progress@@ "


def q(arg: Arg) -> str:
    """Quote one argument for a POSIX shell."""
    return shlex.quote(str(arg))


def cmd(*argv: Arg) -> str:
    """A simple command line with every word quoted: ``cmd("rm", "-f", path)``."""
    return " ".join(q(a) for a in argv)


def heredoc(content: str | bytes) -> str:
    """A quoted here-document body carrying ``content`` byte-exactly.

    Returns text meant to follow a command, e.g. ``"base64 -d >f " + heredoc(x)``: the
    content is base64-encoded, so no byte of it is ever interpreted by the shell, and
    the delimiter is random.
    """
    data = content.encode() if isinstance(content, str) else content
    encoded = base64.encodebytes(data).decode() if data else ""
    tag = "STACK_EOF_" + secrets.token_hex(6)
    return f"<<'{tag}'\n{encoded}{tag}\n"


def piped(content: str | bytes, line: str) -> str:
    """Script text that feeds ``content`` byte-exactly to the command ``line`` on stdin."""
    data = content.encode() if isinstance(content, str) else content
    encoded = base64.encodebytes(data).decode() if data else ""
    tag = "STACK_EOF_" + secrets.token_hex(6)
    return f"base64 -d <<'{tag}' | {line}\n{encoded}{tag}\n"


def write_file(path: str, content: str | bytes, *, mode: str = "0644", owner: str = "root",
               group: str = "root") -> str:
    """Script that atomically replaces ``path`` with ``content`` (temp file + rename)."""
    tmp = f"{path}.stack-tmp"
    return (
        f"base64 -d >{q(tmp)} {heredoc(content)}"
        f"chown {q(owner + ':' + group)} {q(tmp)} && chmod {q(mode)} {q(tmp)}"
        f" && mv -f {q(tmp)} {q(path)}\n"
    )


def script(lines: Iterable[str]) -> str:
    """Join shell fragments into one script that stops at the first failure."""
    body = "\n".join(line.rstrip("\n") for line in lines if line)
    return "set -eu\n" + body + "\n"


def progress(text: str) -> str:
    """A script line telling the operator what the script is doing now (shown live)."""
    return f"printf '%s\\n' {q(PROGRESS + text)} >&2\n"
