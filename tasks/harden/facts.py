"""Facts shared by several host-layer steps."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.engine.facts import Fact, Raw, lines
from tasks.engine.shell import q


@dataclass(frozen=True)
class OsRelease:
    id: str
    version_id: str
    pretty: str

    @property
    def supported(self) -> bool:
        return (self.id, self.version_id) in {("debian", "12"), ("ubuntu", "24.04")}


def _os_release(raw: Raw) -> OsRelease:
    values: dict[str, str] = {}
    for line in lines(raw):
        key, _, value = line.partition("=")
        values[key] = value.strip().strip('"')
    return OsRelease(values.get("ID", "unknown"), values.get("VERSION_ID", ""),
                     values.get("PRETTY_NAME", "unknown OS"))


OS_RELEASE = Fact("os-release", "cat /etc/os-release", _os_release)


def unit_states(*units: str) -> Fact[dict[str, str]]:
    """For each unit ``<enabled state>,<active state>`` (e.g. ``enabled,active``).

    Two systemctl calls for all units: each prints one line per unit, in order.
    """
    names = " ".join(q(u) for u in units)
    command = f"systemctl is-enabled {names}; echo --; systemctl is-active {names}"

    def parse(raw: Raw) -> dict[str, str]:
        enabled, _, active = raw.stdout.partition("--\n")
        e, a = enabled.splitlines(), active.splitlines()
        return {u: f"{e[i] if i < len(e) else ''},{a[i] if i < len(a) else ''}"
                for i, u in enumerate(units)}

    return Fact(f"units:{','.join(units)}", command, parse)


def command_exists(name: str) -> Fact[bool]:
    return Fact(f"which:{name}", f"command -v {q(name)}", lambda raw: raw.rc == 0)


def _modes(raw: Raw) -> dict[str, str]:
    """``stat -c '%a %U:%G %n'``: path -> ``mode owner:group``; a path or glob matching
    nothing prints an error on stderr, no line."""
    out = {}
    for line in lines(raw):
        mode, _, rest = line.partition(" ")
        owner, _, path = rest.partition(" ")
        if path:
            out[path] = f"{mode} {owner}"
    return out


def modes_fact(key: str, *paths: str) -> Fact[dict[str, str]]:
    """Mode and owner of ``paths`` (shell words: globs expand on the host)."""
    return Fact(key, f"stat -c '%a %U:%G %n' {' '.join(paths)}", _modes)
