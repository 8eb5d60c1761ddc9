"""``/dev/shm`` without executables, device files or set-user-ID programs.

Shared memory is a world-writable tmpfs: a favourite place to drop and run a payload.
Nothing on the host executes from it (containers get a /dev/shm of their own). The
``/etc/fstab`` line makes systemd mount it so at boot; a remount applies it now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.shell import q
from tasks.engine.step import Change, Step

FSTAB = "/etc/fstab"
SHM = "/dev/shm"  # noqa: S108 - the mount point we harden, not a temp file
OPTIONS = ("nosuid", "nodev", "noexec")
FSTAB_LINE = f"tmpfs {SHM} tmpfs defaults,{','.join(OPTIONS)} 0 0"
_FSTAB_MATCH = f"^[^#[:space:]]+[[:space:]]+{SHM}[[:space:]]"


def _shm(raw: Raw) -> tuple[set[str], str | None]:
    """(the live mount options of /dev/shm, its fstab line or None)."""
    live, _, fstab = raw.stdout.partition("--\n")
    line = next((x.strip() for x in fstab.splitlines() if x.strip()), None)
    return set(live.strip().split(",")) - {""}, line


STATE = Fact("shm:state", f"findmnt -n -o OPTIONS {SHM}; echo --;"
             f" grep -E '{_FSTAB_MATCH}' {FSTAB}", _shm)


class DevShm(Step):
    id = "dev-shm"
    name = "/dev/shm: noexec, nodev, nosuid"  # noqa: S108

    def facts(self) -> Sequence[Fact[Any]]:
        return [STATE]

    def plan(self, facts: Facts) -> list[Change]:
        live, line = facts[STATE]
        changes = []
        if line != FSTAB_LINE:
            script = (f"sed -i -E '\\|{_FSTAB_MATCH}|c\\\n{FSTAB_LINE}' {FSTAB}\n" if line
                      else f"printf '%s\\n' {q(FSTAB_LINE)} >>{FSTAB}\n")
            changes.append(Change(f"{'replace' if line else 'add'} the {SHM} line of {FSTAB}",
                                  script))
        missing = [o for o in OPTIONS if o not in live]
        if missing:
            changes.append(Change(f"remount {SHM} {','.join(missing)}",
                                  f"mount -o remount,{','.join(OPTIONS)} {SHM}\n"))
        return changes
