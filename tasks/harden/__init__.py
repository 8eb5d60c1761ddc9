"""The host layer: what ``inv host.harden`` converges, step by step.

:func:`steps` builds the ordered steps for one host from the inventory; :func:`harden`
runs them on every host with the dead-man switch guarding the access steps.
"""

from __future__ import annotations

import ipaddress

from tasks.cli import Session
from tasks.engine.converge import converge
from tasks.engine.report import Status
from tasks.engine.step import Step
from tasks.harden import known_hosts
from tasks.harden.deadman import DeadmanSwitch
from tasks.harden.fail2ban import Fail2ban, JailPolicy
from tasks.harden.firewall import Firewall, FirewallPolicy
from tasks.harden.packages import Packages
from tasks.harden.preflight import Preflight
from tasks.harden.sshd import Sshd
from tasks.harden.sysctl import Sysctl
from tasks.harden.updates import UpdatePolicy, Updates
from tasks.model.model import Host, Inventory


def node_networks(inv: Inventory) -> tuple[str, ...]:
    """Each node's own address as a one-host network: its internal address when set,
    else its SSH address when that is an IP (a DNS name cannot go into a UFW rule)."""
    out = []
    for host in inv.hosts:
        try:
            ip = ipaddress.ip_address(host.internal_address or host.address)
        except ValueError:
            continue
        if not ip.is_loopback:
            out.append(str(ipaddress.ip_network(ip)))
    return tuple(dict.fromkeys(out))


def firewall_policy(inv: Inventory, live_ssh_port: int) -> FirewallPolicy:
    h = inv.host
    return FirewallPolicy(
        ssh_port=h.ssh.port,
        live_ssh_ports=(live_ssh_port,) if live_ssh_port else (),
        open_tcp=tuple(h.firewall.open_tcp),
        api_port=h.firewall.api_port,
        operators=tuple(inv.operators),
        nodes=node_networks(inv),
        cluster_cidrs=(inv.k3s.pod_cidr, inv.k3s.service_cidr),
        rate_limit_ssh=h.ssh.rate_limit,
    )


def steps(inv: Inventory, host: Host, client_address: str, live_ssh_port: int) -> list[Step]:
    """The host layer for one host, in order (packages first: later steps need them)."""
    h = inv.host
    return [
        Preflight(host.name, client_address, inv.operators),
        Packages(h.extra_packages),
        Sshd(),
        Firewall(firewall_policy(inv, live_ssh_port)),
        Fail2ban(JailPolicy(h.ssh.port, h.fail2ban.bantime, h.fail2ban.findtime,
                            h.fail2ban.maxretry, tuple(inv.operators))),
        Sysctl(),
        Updates(UpdatePolicy(h.updates.enabled, h.updates.reboot, h.updates.reboot_time)),
    ]


def run(session: Session) -> None:
    """Converge every selected host; stops at the first host that fails."""
    inv = session.inventory.data
    for host in session.hosts():
        with session.target(host) as target:
            plan = steps(inv, host, target.client_address, target.server_port)
            guard = DeadmanSwitch(target, inv.host.deadman_seconds)
            ok = converge(target, plan, check=session.check, reporter=session.reporter,
                          summary=session.summary, guard=guard)
            rotated = any(o.target == host.name and o.step == Sshd.name
                          and o.status is Status.CHANGED for o in session.summary.outcomes)
            if ok and rotated:
                for kind in known_hosts.refresh(target, session.inventory.known_hosts):
                    session.reporter.note(host.name, f"updated {kind} key in"
                                          f" {session.inventory.known_hosts.name}")
            # Every round trip of this host, connecting (address, sudo probe) included.
            session.summary.round_trips[host.name] = target.round_trips
        if not ok:
            break
