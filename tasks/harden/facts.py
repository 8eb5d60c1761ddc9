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


def _units(raw: Raw) -> dict[str, str]:
    """``systemctl is-enabled/is-active a b`` prints one word per unit, in order."""
    return dict(line.split("=", 1) for line in lines(raw) if "=" in line)


def unit_states(*units: str) -> Fact[dict[str, str]]:
    """For each unit ``name=<enabled state>,<active state>`` (e.g. ``enabled,active``)."""
    loop = " ".join(q(u) for u in units)
    command = (f"for u in {loop}; do printf '%s=%s,%s\\n' \"$u\""
               " \"$(systemctl is-enabled \"$u\" 2>/dev/null || true)\""
               " \"$(systemctl is-active \"$u\" 2>/dev/null || true)\"; done")
    return Fact(f"units:{','.join(units)}", command, _units)


def command_exists(name: str) -> Fact[bool]:
    return Fact(f"which:{name}", f"command -v {q(name)}", lambda raw: raw.rc == 0)
