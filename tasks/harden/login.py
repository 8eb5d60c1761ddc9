"""Login defaults and core dumps.

``/etc/login.defs``: new files private to their group (UMASK 027, also the mode of new
home folders) and password ageing for local passwords. Ageing applies to accounts
created from now on; existing accounts (the SSH user, whose password sudo may ask for)
are not aged here, so that no unattended run ever meets an expired sudo password. SSH
logins are key-only, so a password is only ever a sudo or console secret.

Core dumps are off: a hard limit of 0 for every PAM session (``limits.d``); processes
that raise their own limit (systemd units with ``LimitCORE=infinity``, such as k3s)
still dump nothing, since the kernel hands every core to ``/bin/false``
(``kernel.core_pattern`` in :mod:`tasks.harden.sysctl`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, file_fact
from tasks.engine.shell import write_file
from tasks.engine.step import Change, Step
from tasks.harden.keyvalue import set_values, values_fact

LOGIN_DEFS = "/etc/login.defs"
LIMITS = "/etc/security/limits.d/stack-hardening.conf"
LIMITS_CONTENT = ("# Managed by k3s-vps-platform (inv host.harden).\n"
                  "# No core dumps: they can hold keys and passwords from memory.\n"
                  "* hard core 0\n"
                  "* soft core 0\n")

# (keyword, value): login.defs keeps one ``KEYWORD value`` per line
LOGIN_DEFS_VALUES: list[tuple[str, str]] = [
    ("UMASK", "027"),
    ("PASS_MAX_DAYS", "60"),
    ("PASS_MIN_DAYS", "7"),
    ("PASS_WARN_AGE", "7"),
    ("LOGIN_RETRIES", "5"),
    ("LOGIN_TIMEOUT", "60"),
    ("ENCRYPT_METHOD", "SHA512"),
]
DEFS = values_fact("login-defs", LOGIN_DEFS, [k for k, _ in LOGIN_DEFS_VALUES])
LIMITS_FILE = file_fact(LIMITS)


class Login(Step):
    id = "login"
    name = "login: login.defs, no core dumps"

    def facts(self) -> Sequence[Fact[Any]]:
        return [DEFS, LIMITS_FILE]

    def plan(self, facts: Facts) -> list[Change]:
        changes = set_values(LOGIN_DEFS, LOGIN_DEFS_VALUES, facts[DEFS])
        if facts[LIMITS_FILE] != LIMITS_CONTENT:
            changes.append(Change(f"write {LIMITS} (no core dumps)",
                                  write_file(LIMITS, LIMITS_CONTENT)))
        return changes
