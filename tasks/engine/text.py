"""Showing text that came from outside (a host's output, a user's value) safely.

Terminal escapes, newlines and other control characters are shown escaped, and long
text is cut, so that no output line can be forged, garble a terminal or run for pages.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{ord(char):02x}"
                                                        if ord(char) < 0x100
                                                        else f"\\u{ord(char):04x}")


def printable(text: str, cap: int = 200) -> str:
    """``text`` with control characters escaped, cut to ``cap`` characters plus ``...``."""
    shown = _CONTROL.sub(_escape, text[: cap * 4])
    return shown if len(shown) <= cap else shown[:cap] + "..."
