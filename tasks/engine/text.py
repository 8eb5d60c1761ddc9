"""Showing text that came from outside (a host's output, a user's value) safely.

Newlines, control characters and terminal escapes are shown escaped (``\\n``,
``\\x1b``, ``\\u202e``), and long text is cut, so that no output line can be forged,
garble a terminal or run for pages.
"""

from __future__ import annotations

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def escape(text: str, limit: int = 60, *, quote: str = "") -> str:
    """``text`` made safe for one line of a terminal, cut after ``limit`` characters (then
    ``...``). ``quote``: also escaped, and put around the text."""
    out: list[str] = []
    for ch in text[:limit]:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return quote + "".join(out) + quote + ("..." if len(text) > limit else "")


def printable(text: str, cap: int = 200) -> str:
    """A host's output line for the terminal: :func:`escape` without quotes."""
    return escape(text, cap)
