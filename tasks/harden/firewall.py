"""UFW: deny incoming by default; SSH, HTTP(S) open; the Kubernetes API for operators only.

Rules are compared in the form ``ufw show added`` prints them, *in order*: operators'
SSH rules come before the rate limit so operators are never throttled. When the order
or content differs, rules after the longest matching prefix are deleted and re-added.
The live SSH port (the one this session came in on) is always allowed before the
firewall is enabled.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, lines
from tasks.engine.shell import cmd
from tasks.engine.step import Change, Step
from tasks.harden.facts import command_exists

UFW_INSTALLED = command_exists("ufw")


def _added(raw: Raw) -> list[str]:
    """Rules from ``ufw show added`` (``ufw limit 22/tcp``), without the ``ufw `` prefix."""
    return [line.removeprefix("ufw ").strip() for line in lines(raw)
            if line.startswith("ufw ")]


def _status(raw: Raw) -> dict[str, str]:
    """``status=active|inactive`` plus the policies from /etc/default/ufw."""
    out: dict[str, str] = {}
    for line in lines(raw):
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip('"')
    return out


ADDED = Fact("ufw:added", "ufw show added", _added)
# Active = enabled at boot (ufw.conf) *and* its rules are loaded in the kernel now; this
# avoids a second slow ``ufw status`` start-up per run.
STATUS = Fact("ufw:status",
              "if grep -qx 'ENABLED=yes' /etc/ufw/ufw.conf && iptables -w -S ufw-user-input"
              " >/dev/null 2>&1; then echo status=active; else echo status=inactive; fi;"
              " grep -E '^(DEFAULT_(INPUT|OUTPUT)_POLICY|IPV6)=' /etc/default/ufw", _status)


def canonical(cidr: str) -> str:
    """How ufw prints an address: a single-host CIDR loses its prefix."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


@dataclass(frozen=True)
class FirewallPolicy:
    ssh_port: int
    live_ssh_ports: tuple[int, ...]
    open_tcp: tuple[int, ...]
    api_port: int
    operators: tuple[str, ...]
    nodes: tuple[str, ...]
    cluster_cidrs: tuple[str, ...]
    rate_limit_ssh: bool = True

    def rules(self) -> list[str]:
        """Wanted rules, in order, as ``ufw show added`` prints them."""
        out: list[str] = []
        ssh_ports = list(dict.fromkeys([self.ssh_port, *self.live_ssh_ports]))
        for port in ssh_ports:
            out += [f"allow from {canonical(c)} to any port {port} proto tcp"
                    for c in self.operators]
        for port in ssh_ports:
            out.append(f"{'limit' if self.rate_limit_ssh else 'allow'} {port}/tcp")
        out += [f"allow {port}/tcp" for port in self.open_tcp]
        api_sources = dict.fromkeys([*self.operators, *self.nodes])
        out += [f"allow from {canonical(c)} to any port {self.api_port} proto tcp"
                for c in api_sources]
        out += [f"allow from {canonical(c)}" for c in self.cluster_cidrs]
        return list(dict.fromkeys(out))


def reconcile(current: list[str], wanted: list[str]) -> tuple[list[str], list[str]]:
    """(rules to delete, rules to add) so that ``current`` becomes ``wanted`` in order."""
    prefix = 0
    while prefix < min(len(current), len(wanted)) and current[prefix] == wanted[prefix]:
        prefix += 1
    return current[prefix:], wanted[prefix:]


class Firewall(Step):
    name = "firewall: ufw rules and policy"
    guarded = True

    def __init__(self, policy: FirewallPolicy) -> None:
        self.policy = policy

    def facts(self) -> Sequence[Fact[Any]]:
        return [UFW_INSTALLED, ADDED, STATUS]

    def plan(self, facts: Facts) -> list[Change]:
        wanted = self.policy.rules()
        if not facts[UFW_INSTALLED]:
            return [Change(f"configure ufw ({len(wanted)} rules) and enable it",
                           self._script([], wanted, enable=True, defaults=True))]
        status = facts[STATUS]
        delete, add = reconcile(facts[ADDED], wanted)
        defaults = (status.get("DEFAULT_INPUT_POLICY") != "DROP"
                    or status.get("DEFAULT_OUTPUT_POLICY") != "ACCEPT")
        enable = status.get("status") != "active"
        changes = []
        if defaults:
            changes.append(Change("default policy: deny incoming, allow outgoing",
                                  self._script([], [], enable=False, defaults=True)))
        changes += [Change(f"delete rule: {rule}", cmd("ufw", "delete", *rule.split()))
                    for rule in delete]
        changes += [Change(f"add rule: {rule}", cmd("ufw", *rule.split())) for rule in add]
        if enable:
            changes.append(Change("enable ufw", cmd("ufw", "--force", "enable")))
        return changes

    @staticmethod
    def _script(delete: list[str], add: list[str], *, enable: bool, defaults: bool) -> str:
        parts = []
        if defaults:
            parts += [cmd("ufw", "default", "deny", "incoming"),
                      cmd("ufw", "default", "allow", "outgoing")]
        parts += [cmd("ufw", "delete", *r.split()) for r in delete]
        parts += [cmd("ufw", *r.split()) for r in add]
        if enable:
            parts.append(cmd("ufw", "--force", "enable"))
        return "\n".join(parts) + "\n"
