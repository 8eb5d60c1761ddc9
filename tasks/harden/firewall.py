"""UFW: deny incoming by default; SSH, HTTP(S) open; the Kubernetes API for operators only.

Rules are compared as a set, in the form ``ufw show added`` prints them, plus the one
order that matters: operators' SSH allows come before the public SSH rule (the rate
limit) of the same port, so operators are never throttled. That order is read per
address family from ufw's own rule files (``show added`` lists IPv6-only rules last).

Reconciling never opens a window without an SSH rule: missing operator SSH allows are
prepended, other missing rules appended, and only then are stale rules deleted. A public
SSH rule found before an operator's is moved (deleted and appended) while the
operators' allows stay in place. The live SSH port (the one this session came in on) is
always among the wanted ports, so its rules are never stale.
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
FLANNEL_VXLAN = 8472  # udp, between nodes only
KUBELET = 10250
ETCD = "2379:2380"  # client and peer ports of embedded etcd, between servers only
ANY_SOURCE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Tuple:
    """One rule as ufw stores it (``### tuple ### allow tcp 22 0.0.0.0/0 any 10.0.2.2 in``)."""

    action: str
    proto: str
    dport: str
    src: str


def _tuples(raw: Raw) -> tuple[list[Tuple], list[Tuple]]:
    """The IPv4 and IPv6 rules, each in evaluation order."""
    v4, _, v6 = raw.stdout.partition("--\n")

    def parse(text_: str) -> list[Tuple]:
        out = []
        for line in text_.splitlines():
            words = line.removeprefix("### tuple ###").split(" comment=")[0].split()
            if len(words) >= 6:
                out.append(Tuple(words[0].removesuffix("_log-all").removesuffix("_log"),
                                 words[1], words[2], words[5]))
        return out

    return parse(v4), parse(v6)


ORDER = Fact("ufw:order", "grep -h '^### tuple ###' /etc/ufw/user.rules; echo --;"
             " grep -h '^### tuple ###' /etc/ufw/user6.rules", _tuples)
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
    #: The other nodes (when there are several): flannel VXLAN and the kubelet from them.
    peers: tuple[str, ...] = ()
    #: The other servers, when this host is a server too: embedded etcd from them.
    etcd_peers: tuple[str, ...] = ()

    def ssh_ports(self) -> list[int]:
        return list(dict.fromkeys([self.ssh_port, *self.live_ssh_ports]))

    def is_operator_ssh(self, rule: str) -> bool:
        return any(rule == f"allow from {canonical(c)} to any port {p} proto tcp"
                   for c in self.operators for p in self.ssh_ports())

    def public_ssh_port(self, rule: str) -> int | None:
        """The port of a public SSH rule (``limit 22/tcp``), else None."""
        return next((p for p in self.ssh_ports() for a in ("limit", "allow")
                     if rule == f"{a} {p}/tcp"), None)

    def rules(self) -> list[str]:
        """Wanted rules, in order, as ``ufw show added`` prints them."""
        out: list[str] = []
        ssh_ports = self.ssh_ports()
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
        for peer in self.peers:
            out += [f"allow from {canonical(peer)} to any port {FLANNEL_VXLAN} proto udp",
                    f"allow from {canonical(peer)} to any port {KUBELET} proto tcp"]
        out += [f"allow from {canonical(p)} to any port {ETCD} proto tcp" for p in self.etcd_peers]
        return list(dict.fromkeys(out))


def reconcile(current: list[str], wanted: list[str]) -> tuple[list[str], list[str]]:
    """(rules to delete, rules to add), each in the order of its list."""
    have, want = set(current), set(wanted)
    return [r for r in current if r not in want], [r for r in wanted if r not in have]


def misordered_ports(order: tuple[list[Tuple], list[Tuple]], policy: FirewallPolicy
                     ) -> list[int]:
    """SSH ports whose public rule comes before a wanted operator allow, in either family."""
    operators = {canonical(c) for c in policy.operators}
    out = []
    for port in policy.ssh_ports():
        for family in order:
            mine = [i for i, t in enumerate(family) if t.dport == str(port) and t.proto == "tcp"]
            allows = [i for i in mine if family[i].action == "allow"
                      and family[i].src in operators]
            public = [i for i in mine if family[i].src in ANY_SOURCE]
            if allows and public and min(public) < max(allows):
                out.append(port)
                break
    return out


class Firewall(Step):
    id = "firewall"
    name = "firewall: ufw rules and policy"
    guarded = True

    def __init__(self, policy: FirewallPolicy) -> None:
        self.policy = policy

    def facts(self) -> Sequence[Fact[Any]]:
        return [UFW_INSTALLED, ADDED, STATUS, ORDER]

    def plan(self, facts: Facts) -> list[Change]:
        wanted = self.policy.rules()
        if not facts[UFW_INSTALLED]:
            return [Change(f"configure ufw ({len(wanted)} rules) and enable it",
                           "\n".join([*(cmd("ufw", *r.split()) for r in wanted), *_DEFAULTS,
                                      cmd("ufw", "--force", "enable")]) + "\n")]
        status = facts[STATUS]
        current = facts[ADDED]
        delete, add = reconcile(current, wanted)
        first = [r for r in add if self.policy.is_operator_ssh(r)]
        misordered = set(misordered_ports(facts[ORDER], self.policy))
        moved = [r for r in current
                 if r not in delete and self.policy.public_ssh_port(r) in misordered]
        changes = [Change(f"add rule: {r} (before the public SSH rules)",
                          cmd("ufw", "prepend", *r.split())) for r in reversed(first)]
        changes.reverse()  # shown in wanted order; prepended last-first
        changes += [Change(f"move rule after the operators' SSH rules: {r}",
                           cmd("ufw", "delete", *r.split()) + "\n" + cmd("ufw", *r.split()))
                    for r in moved]
        changes += [Change(f"add rule: {r}", cmd("ufw", *r.split()))
                    for r in add if r not in first]
        if (status.get("DEFAULT_INPUT_POLICY") != "DROP"
                or status.get("DEFAULT_OUTPUT_POLICY") != "ACCEPT"):
            changes.append(Change("default policy: deny incoming, allow outgoing",
                                  "\n".join(_DEFAULTS)))
        changes += [Change(f"delete rule: {r}", cmd("ufw", "delete", *r.split()))
                    for r in delete]
        if status.get("status") != "active":
            changes.append(Change("enable ufw", cmd("ufw", "--force", "enable")))
        return changes


_DEFAULTS = [cmd("ufw", "default", "deny", "incoming"), cmd("ufw", "default", "allow", "outgoing")]
