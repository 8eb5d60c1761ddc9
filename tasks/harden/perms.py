"""File permissions: cron's files for root only, set-user-ID bits off where unused.

cron reads ``/etc/crontab`` and its folders as root; nobody else needs to read what runs
when (0600 for the file, 0700 for the folders).

Set-user-ID and set-group-ID bits are removed from programs this host never runs for
ordinary users: ``ssh-keysign`` (host-based authentication, off in sshd and the client),
changing one's finger information or shell (``chfn``, ``chsh``), group passwords
(``newgrp``, ``gpasswd``), looking at one's own password ageing (``chage``, ``expiry``),
and mounting as a user (``mount``, ``umount``). The change goes through
``dpkg-statoverride``, so package upgrades keep it. ``sudo``, ``su``, ``passwd``,
``unix_chkpwd`` (PAM's password check), ``ssh-agent`` (its group protects it from being
traced), dbus's helper and ``crontab`` (cron registers its own override) keep theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, lines
from tasks.engine.shell import cmd, q
from tasks.engine.step import Change, Step
from tasks.harden.facts import modes_fact

CRONTAB = "/etc/crontab"
CRON_DIRS = ("/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
             "/etc/cron.monthly", "/etc/cron.yearly")
CRON_MODES = {CRONTAB: "600", **dict.fromkeys(CRON_DIRS, "700")}

NO_SUID = ("/usr/lib/openssh/ssh-keysign", "/usr/bin/chfn", "/usr/bin/chsh",
           "/usr/bin/newgrp", "/usr/bin/gpasswd", "/usr/bin/chage", "/usr/bin/expiry",
           "/usr/bin/mount", "/usr/bin/umount")
_SPECIAL = 0o6000

CRON = modes_fact("cron:modes", CRONTAB, *CRON_DIRS)
SUID = modes_fact("suid:modes", *NO_SUID)


def _overrides(raw: Raw) -> dict[str, str]:
    """``dpkg-statoverride --list``: path -> ``mode owner:group``."""
    out = {}
    for line in lines(raw):
        words = line.split()
        if len(words) == 4:
            out[words[3]] = f"{words[2]} {words[0]}:{words[1]}"
    return out


OVERRIDES = Fact("dpkg:statoverrides", "dpkg-statoverride --list", _overrides)


def without_special(mode: str) -> str:
    """``4755`` -> ``755``: the mode without set-user-ID, set-group-ID and sticky bits."""
    return f"{int(mode, 8) & ~_SPECIAL & 0o7777:o}"


def wanted_override(live: str) -> str:
    """``4755 root:root`` -> ``755 root:root``: same owner, no special bits."""
    mode, _, owner = live.partition(" ")
    return f"{without_special(mode)} {owner}"


class CronPermissions(Step):
    id = "cron-perms"
    name = "cron: files for root only"

    def facts(self) -> Sequence[Fact[Any]]:
        return [CRON]

    def plan(self, facts: Facts) -> list[Change]:
        changes = []
        for path, got in facts[CRON].items():
            want = CRON_MODES.get(path)
            if want and got != f"{want} root:root":
                changes.append(Change(f"chmod 0{want}, chown root:root {path} (was {got})",
                                      f"chown root:root {q(path)} && chmod 0{want} {q(path)}\n"))
        return changes


class Suid(Step):
    id = "suid"
    name = "set-user-ID bits off where unused"

    def facts(self) -> Sequence[Fact[Any]]:
        return [SUID, OVERRIDES]

    def plan(self, facts: Facts) -> list[Change]:
        overrides = facts[OVERRIDES]
        changes = []
        for path, live in facts[SUID].items():
            want = wanted_override(live)
            if live == want and overrides.get(path) == want:
                continue
            mode, _, owner = want.partition(" ")
            user, _, group = owner.partition(":")
            script = (cmd("dpkg-statoverride", "--remove", path) + "\n"
                      if path in overrides else "")
            script += cmd("dpkg-statoverride", "--update", "--add", user, group, mode, path)
            changes.append(Change(f"{path}: mode {mode} (was {live.partition(' ')[0]}),"
                                  " kept across upgrades", script + "\n"))
        return changes
