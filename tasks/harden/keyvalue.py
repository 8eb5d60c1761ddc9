"""Configuration files of ``KEY value`` (login.defs) or ``key = value`` (auditd.conf)
lines, edited key by key: a line that sets the key is replaced in place (its comments and
every other line stay), a missing key is appended."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tasks.engine.facts import Fact, Raw, lines
from tasks.engine.shell import q
from tasks.engine.step import Change


def values_fact(key: str, path: str, keys: Sequence[str], sep: str = " ") -> Fact[dict[str, str]]:
    """The first uncommented value of each of ``keys`` in ``path``; ``sep`` is ``" "``
    (whitespace) or ``"="``."""
    gap = "[[:space:]]" if sep == " " else "[[:space:]]*="
    pattern = "|".join(re.escape(k) for k in keys)

    def parse(raw: Raw) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in lines(raw):
            if sep == " ":
                words = line.split(None, 1)
                name, value = words[0], words[1] if len(words) > 1 else ""
            else:
                name, _, value = line.partition("=")
            out.setdefault(name.strip(), value.strip())
        return out

    return Fact(key, f"grep -E '^[[:space:]]*({pattern}){gap}' {path}", parse)


def set_values(path: str, wanted: Sequence[tuple[str, str]], live: dict[str, str],
               sep: str = " ") -> list[Change]:
    """One change setting every key of ``wanted`` whose live value differs."""
    differ = [(k, v) for k, v in wanted if live.get(k) != v]
    if not differ:
        return []
    gap, between = ("[[:space:]]", "\\t") if sep == " " else ("[[:space:]]*=", " = ")
    script = ""
    for k, v in differ:
        if k in live:
            script += (f"sed -i -E 's/^[[:space:]]*{re.escape(k)}{gap}.*/{k}{between}{v}/'"
                       f" {path}\n")
        else:
            script += f"printf '%s{between}%s\\n' {q(k)} {q(v)} >>{path}\n"
    shown = ", ".join(f"{k} {v}" for k, v in differ)
    return [Change(f"set {shown} in {path}", script)]
