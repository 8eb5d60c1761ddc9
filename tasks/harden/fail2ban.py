"""fail2ban: the sshd jail on the systemd journal, operators never banned."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, file_fact
from tasks.engine.shell import write_file
from tasks.engine.step import Change, Step
from tasks.harden.facts import unit_states

JAIL_FILE = "/etc/fail2ban/jail.d/00-stack-sshd.local"
UNIT = "fail2ban.service"

_UNITS = unit_states(UNIT)
JAIL_CONTENT = file_fact(JAIL_FILE)


_QUERIES = ("bantime", "findtime", "maxretry", "journalmatch", "ignoreip")


def _live(raw: Raw) -> dict[str, str]:
    """Answers of ``fail2ban-client -i`` (one ``fail2ban> `` prompt per query, in order).

    ``journal`` is ``yes`` when the jail reads the systemd journal; ``ignoreip`` is the
    addresses the jail never bans, space-separated. Empty when fail2ban is not running.
    """
    answers = raw.stdout.split("fail2ban> ")[1:]
    out: dict[str, str] = {}
    for query, answer in zip(_QUERIES, answers, strict=False):
        if "ERROR" in answer or "Sorry" in answer:
            continue
        if query == "journalmatch":
            out["journal"] = "yes" if "_SYSTEMD_UNIT" in answer or "_COMM" in answer else "no"
        elif query == "ignoreip":
            out[query] = " ".join(m.group(1) for m in
                                  re.finditer(r"^\s*[|`]-\s*(\S+)", answer, re.M))
        else:
            out[query] = answer.strip()
    return out


# One Python start-up for every query (each fail2ban-client call costs ~1 s on a slow VPS).
# A service systemd calls active may still be starting (just restarted, or just booted):
# then wait for its socket before reading, rather than report it as misconfigured.
_ASK = ("printf '" + "".join(f"get sshd {k}\\n" for k in _QUERIES) + "'"
        " | fail2ban-client -i 2>/dev/null")
LIVE = Fact(
    "fail2ban:live",
    f"out=$({_ASK}); case \"$out\" in *'fail2ban> '[0-9]*) ;; *)"
    " if systemctl is-active --quiet fail2ban; then"
    " for i in $(seq 1 30); do fail2ban-client ping >/dev/null 2>&1 && break; sleep 1; done;"
    f" out=$({_ASK}); fi;; esac; printf '%s\\n' \"$out\"",
    _live)


def seconds(duration: str) -> int:
    """``10m`` -> 600 (fail2ban reports bantime/findtime in seconds)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total = 0
    for amount, unit in re.findall(r"(\d+)([smhdw])", duration):
        total += int(amount) * units[unit]
    return total


@dataclass(frozen=True)
class JailPolicy:
    ssh_ports: tuple[int, ...]
    bantime: str
    findtime: str
    maxretry: int
    operators: tuple[str, ...]

    def ignoreip(self) -> list[str]:
        return ["127.0.0.1/8", "::1", *self.operators]

    def config(self) -> str:
        return "\n".join([
            "# Managed by k3s-vps-platform (inv host.harden): local edits are overwritten.",
            "# sshd jail on the systemd journal (Debian 12 has no auth.log).",
            "[DEFAULT]",
            f"ignoreip = {' '.join(self.ignoreip())}",
            "",
            "[sshd]",
            "enabled = true",
            "backend = systemd",
            f"port = {','.join(str(p) for p in self.ssh_ports)}",
            f"bantime = {self.bantime}",
            f"findtime = {self.findtime}",
            f"maxretry = {self.maxretry}",
            "",
        ])

    def live_problems(self, live: dict[str, str]) -> list[str]:
        wanted = {"bantime": str(seconds(self.bantime)), "findtime": str(seconds(self.findtime)),
                  "maxretry": str(self.maxretry), "journal": "yes"}
        out = [f"{k} is {live.get(k) or 'unknown'}, want {v}" for k, v in wanted.items()
               if live.get(k) != v]
        have = {_net(a) for a in live.get("ignoreip", "").split()}
        missing = [a for a in self.ignoreip() if _net(a) not in have]
        if missing:
            out.append(f"ignoreip lacks {', '.join(missing)}")
        return out


def _net(address: str) -> str:
    try:
        return str(ipaddress.ip_network(address, strict=False))
    except ValueError:
        return address


_RESTART = (
    f"systemctl enable {UNIT} >/dev/null 2>&1\n"
    f"systemctl restart {UNIT}\n"
    "for i in $(seq 1 30); do fail2ban-client ping >/dev/null 2>&1 && break; sleep 1; done\n"
    "for i in $(seq 1 30); do fail2ban-client status sshd >/dev/null 2>&1 && break; sleep 1; done\n"
    "fail2ban-client status sshd >/dev/null\n"
)


class Fail2ban(Step):
    id = "fail2ban"
    name = "fail2ban: sshd jail"
    guarded = True

    def __init__(self, policy: JailPolicy) -> None:
        self.policy = policy

    def facts(self) -> Sequence[Fact[Any]]:
        return [JAIL_CONTENT, _UNITS, LIVE]

    def plan(self, facts: Facts) -> list[Change]:
        changes = []
        if facts[JAIL_CONTENT] != self.policy.config():
            changes.append(Change(f"write {JAIL_FILE}", write_file(JAIL_FILE,
                                                                   self.policy.config())))
        enabled, _, active = facts[_UNITS].get(UNIT, ",").partition(",")
        live = self.policy.live_problems(facts[LIVE])
        if changes or enabled != "enabled" or active != "active" or live:
            why = "apply the jail" if changes else (
                f"service is {enabled or 'missing'}/{active or 'missing'}"
                if active != "active" or enabled != "enabled" else f"live jail: {live[0]}")
            changes.append(Change(f"enable and restart fail2ban ({why})", _RESTART))
        return changes

    def verify(self, facts: Facts) -> list[str]:
        return [f"live jail: {p}" for p in self.policy.live_problems(facts[LIVE])] + (
            super().verify(facts))
