"""auditd: a small rule set for the changes an intruder makes first, logs rotated.

Watched for writes and attribute changes: the account databases, sudo's rules, sshd's
configuration, and the clock (the system calls that set it, and the time zone). The rules
are loaded with ``augenrules`` and checked against ``auditctl -l``, what the kernel
enforces. They are not made immutable (``-e 2``): that would need a reboot for every
later change, host.harden's own included.

auditd rotates its own log: at ``max_log_file`` MB it starts a new one and keeps
``num_logs``; when the disk runs low it tells syslog rather than stopping the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, file_fact, lines
from tasks.engine.shell import write_file
from tasks.engine.step import Change, Step
from tasks.harden.facts import unit_states
from tasks.harden.keyvalue import set_values, values_fact

RULES_FILE = "/etc/audit/rules.d/50-stack-hardening.rules"
AUDITD_CONF = "/etc/audit/auditd.conf"
UNIT = "auditd.service"

# (rule as written and as ``auditctl -l`` prints it back, what it is for)
RULES: list[tuple[str, str, str]] = [
    ("-w /etc/passwd -p wa -k identity", "-w /etc/passwd -p wa -k identity", "accounts"),
    ("-w /etc/group -p wa -k identity", "-w /etc/group -p wa -k identity", "groups"),
    ("-w /etc/shadow -p wa -k identity", "-w /etc/shadow -p wa -k identity", "passwords"),
    ("-w /etc/gshadow -p wa -k identity", "-w /etc/gshadow -p wa -k identity",
     "group passwords"),
    ("-w /etc/sudoers -p wa -k sudoers", "-w /etc/sudoers -p wa -k sudoers", "sudo's rules"),
    ("-w /etc/sudoers.d -p wa -k sudoers", "-w /etc/sudoers.d -p wa -k sudoers",
     "sudo's drop-ins"),
    ("-w /etc/ssh/sshd_config -p wa -k sshd", "-w /etc/ssh/sshd_config -p wa -k sshd",
     "sshd's configuration"),
    ("-w /etc/ssh/sshd_config.d -p wa -k sshd", "-w /etc/ssh/sshd_config.d -p wa -k sshd",
     "sshd's drop-ins"),
    ("-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change",
     "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -F key=time-change",
     "setting the clock"),
    ("-w /etc/localtime -p wa -k time-change", "-w /etc/localtime -p wa -k time-change",
     "the time zone"),
]

CONF_VALUES: list[tuple[str, str]] = [
    ("max_log_file", "8"),
    ("num_logs", "5"),
    ("max_log_file_action", "ROTATE"),
    ("space_left_action", "SYSLOG"),
    ("admin_space_left_action", "SYSLOG"),
    ("disk_full_action", "ROTATE"),
]


def rules_file() -> str:
    body = [f"# {why}\n{rule}" for rule, _, why in RULES]
    return "\n".join(["# Managed by k3s-vps-platform (inv host.harden).", *body, ""])


def _loaded(raw: Raw) -> set[str]:
    return {" ".join(line.split()) for line in lines(raw)}


CONTENT = file_fact(RULES_FILE)
CONF = values_fact("auditd:conf", AUDITD_CONF, [k for k, _ in CONF_VALUES], sep="=")
LOADED = Fact("auditd:rules", "auditctl -l", _loaded)
_UNITS = unit_states(UNIT)

_LOAD = "augenrules --load >/dev/null\n"


class Audit(Step):
    id = "audit"
    name = "auditd: identity, sudoers, sshd, time"

    def facts(self) -> Sequence[Fact[Any]]:
        return [CONTENT, CONF, _UNITS, LOADED]

    def missing_rules(self, facts: Facts) -> list[str]:
        loaded = facts[LOADED]
        return [shown for _, shown, _ in RULES if shown not in loaded]

    def plan(self, facts: Facts) -> list[Change]:
        changes = []
        rewrite = facts[CONTENT] != rules_file()
        if rewrite:
            changes.append(Change(f"write {RULES_FILE}", write_file(RULES_FILE, rules_file(),
                                                                    mode="0640")))
        conf = set_values(AUDITD_CONF, CONF_VALUES, facts[CONF], sep="=")
        if conf:
            changes += conf
        state = facts[_UNITS][UNIT]
        if state != "enabled,active":
            changes.append(Change(f"enable and start auditd (was {state})",
                                  f"systemctl enable --now {UNIT}\n"))
        elif conf:
            # auditd refuses a manual stop (RefuseManualStop): SIGHUP rereads its file
            changes.append(Change("reload auditd's configuration",
                                  f"systemctl kill --signal=SIGHUP {UNIT}\n"))
        missing = self.missing_rules(facts)
        if rewrite or missing:
            why = f"{len(missing)} of our rules not loaded" if missing else "the new file"
            changes.append(Change(f"load the rules with augenrules ({why})", _LOAD))
        return changes
