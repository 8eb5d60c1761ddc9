"""Automatic security updates with unattended-upgrades and apt's daily timers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasks.engine.facts import Fact, Facts, file_fact
from tasks.engine.shell import cmd, write_file
from tasks.engine.step import Change, Step
from tasks.harden.facts import unit_states

PERIODIC_FILE = "/etc/apt/apt.conf.d/20auto-upgrades"
POLICY_FILE = "/etc/apt/apt.conf.d/52stack-unattended-upgrades"
TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer")

_TIMERS = unit_states(*TIMERS)
_PERIODIC = file_fact(PERIODIC_FILE)
_POLICY = file_fact(POLICY_FILE)


@dataclass(frozen=True)
class UpdatePolicy:
    enabled: bool
    reboot: bool
    reboot_time: str

    def periodic(self) -> str:
        flag = "1" if self.enabled else "0"
        return (f'APT::Periodic::Update-Package-Lists "{flag}";\n'
                f'APT::Periodic::Unattended-Upgrade "{flag}";\n')

    def policy(self) -> str:
        reboot = "true" if self.reboot else "false"
        return "\n".join([
            "// Managed by k3s-vps-platform (inv host.harden).",
            "// Origins: the distribution's defaults (security updates) are kept.",
            f'Unattended-Upgrade::Automatic-Reboot "{reboot}";',
            f'Unattended-Upgrade::Automatic-Reboot-Time "{self.reboot_time}";',
            'Unattended-Upgrade::Remove-Unused-Kernel-Packages "true";',
            'Unattended-Upgrade::Remove-Unused-Dependencies "true";',
            'Unattended-Upgrade::SyslogEnable "true";',
            "",
        ])


class Updates(Step):
    id = "updates"
    name = "updates: unattended security upgrades"

    def __init__(self, policy: UpdatePolicy) -> None:
        self.policy = policy

    def facts(self) -> Sequence[Fact[Any]]:
        return [_TIMERS, _PERIODIC, _POLICY]

    def plan(self, facts: Facts) -> list[Change]:
        changes = []
        if facts[_PERIODIC] != self.policy.periodic():
            changes.append(Change(f"write {PERIODIC_FILE}",
                                  write_file(PERIODIC_FILE, self.policy.periodic())))
        if facts[_POLICY] != self.policy.policy():
            changes.append(Change(f"write {POLICY_FILE}",
                                  write_file(POLICY_FILE, self.policy.policy())))
        states = facts[_TIMERS]
        off = [t for t in TIMERS if states.get(t) != "enabled,active"]
        if self.policy.enabled and off:
            changes.append(Change(f"enable {' '.join(off)}",
                                  cmd("systemctl", "enable", "--now", *off) + "\n"))
        return changes
