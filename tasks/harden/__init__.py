"""The host layer: what ``inv host.harden`` converges, step by step.

:func:`steps` builds the ordered steps for one host from the inventory; :func:`harden`
runs them on every host with the dead-man switch guarding the access steps.
"""

from __future__ import annotations

import ipaddress

from tasks.cli import Session
from tasks.engine.report import Status
from tasks.engine.step import Step
from tasks.engine.target import SshTarget
from tasks.harden import known_hosts
from tasks.harden.audit import Audit
from tasks.harden.deadman import DeadmanSwitch
from tasks.harden.fail2ban import Fail2ban, JailPolicy
from tasks.harden.firewall import Firewall, FirewallPolicy
from tasks.harden.login import Login
from tasks.harden.modules import Modules
from tasks.harden.mounts import DevShm
from tasks.harden.packages import Packages
from tasks.harden.perms import CronPermissions, Suid
from tasks.harden.preflight import Preflight
from tasks.harden.ssh_client import SshClient
from tasks.harden.sshd import Sshd, SshdKeys
from tasks.harden.sysctl import Sysctl
from tasks.harden.updates import UpdatePolicy, Updates
from tasks.layer import HostLayer, run_host_layer
from tasks.model.model import Host, Inventory


def node_networks(inv: Inventory, hosts: list[Host] | None = None) -> tuple[str, ...]:
    """Each node's own address as a one-host network: its internal address when set,
    else its SSH address when that is an IP (a DNS name cannot go into a UFW rule)."""
    out = []
    for host in inv.hosts if hosts is None else hosts:
        try:
            ip = ipaddress.ip_address(host.internal_address or host.address)
        except ValueError:
            continue
        if not ip.is_loopback:
            out.append(str(ipaddress.ip_network(ip)))
    return tuple(dict.fromkeys(out))


def ssh_ports(wanted: int, live: int) -> tuple[int, ...]:
    """The ports sshd, the firewall and the jail cover: the inventory's, plus the port this
    session came in on while sshd moves away from it (closed once a login on the new one
    is confirmed)."""
    return (wanted,) if not live or live == wanted else (wanted, live)


def firewall_policy(inv: Inventory, live_ssh_port: int,
                    host: Host | None = None) -> FirewallPolicy:
    """The firewall of ``host`` (the inter-node rules need to know which one it is)."""
    h = inv.host
    others = [o for o in inv.hosts if host is None or o.name != host.name]
    servers = [o for o in others if o.role == "server"]
    several = len(inv.hosts) > 1 and host is not None
    return FirewallPolicy(
        ssh_port=h.ssh.port,
        live_ssh_ports=(live_ssh_port,) if live_ssh_port else (),
        open_tcp=tuple(h.firewall.open_tcp),
        api_port=h.firewall.api_port,
        operators=tuple(inv.operators),
        nodes=node_networks(inv),
        cluster_cidrs=(inv.k3s.pod_cidr, inv.k3s.service_cidr),
        rate_limit_ssh=h.ssh.rate_limit,
        peers=node_networks(inv, others) if several else (),
        etcd_peers=(node_networks(inv, servers) if several and host is not None
                    and host.role == "server" and len(inv.servers) > 1 else ()),
    )


def steps(inv: Inventory, host: Host, client_address: str, live_ssh_port: int) -> list[Step]:
    """The host layer for one host, in order (packages first: later steps need them)."""
    h = inv.host
    ports = ssh_ports(h.ssh.port, live_ssh_port)
    return [
        Preflight(host.name, client_address, inv.operators),
        Packages(h.extra_packages),
        SshdKeys(),
        Sshd(ports, live_port_known=bool(live_ssh_port)),
        Firewall(firewall_policy(inv, live_ssh_port, host)),
        Fail2ban(JailPolicy(ports, h.fail2ban.bantime, h.fail2ban.findtime,
                            h.fail2ban.maxretry, tuple(inv.operators))),
        SshClient(),
        Sysctl(h.kernel.accept_ra),
        Modules(h.kernel.allow_modules),
        Login(),
        CronPermissions(),
        Suid(),
        DevShm(),
        Audit(),
        Updates(UpdatePolicy(h.updates.enabled, h.updates.reboot, h.updates.reboot_time)),
    ]


def _steps(session: Session, host: Host, target: SshTarget) -> list[Step]:
    return steps(session.inventory.data, host, target.client_address, target.server_port)


def _guard(session: Session, host: Host, target: SshTarget) -> DeadmanSwitch:
    inv = session.inventory.data
    wanted, live = inv.host.ssh.port, target.server_port
    # The confirming login goes where sshd must answer afterwards: the port we came in on
    # when it stays, else (moving) the connect port of the new one.
    confirm = target.settings.port if not live or live == wanted else host.connect_port(wanted)
    return DeadmanSwitch(target, inv.host.deadman_seconds, confirm_port=confirm)


def _refresh_known_hosts(session: Session, host: Host, target: SshTarget) -> None:
    """A rotated host key replaces its lines in the project known_hosts."""
    if session.summary.status_of(host.name, SshdKeys.id) is Status.CHANGED:
        ports = [target.settings.port, *target.settings.fallback_ports]
        for kind in known_hosts.refresh(target, session.inventory.known_hosts, ports):
            session.reporter.note(host.name, f"updated {kind} key in"
                                  f" {session.inventory.known_hosts.name}")


def _close_old_port(session: Session, host: Host, target: SshTarget) -> SshTarget | None:
    """When this pass moved sshd to the inventory's port: a target on the new port, for a
    second pass that closes the old one."""
    wanted, live = session.inventory.data.host.ssh.port, target.server_port
    if session.check or not live or live == wanted:
        return None
    session.reporter.note(host.name, f"sshd now listens on port {wanted}: reconnecting there"
                          f" to close port {live}")
    return target.reconnect(host.connect_port(wanted))


LAYER = HostLayer("host.harden", _steps, guard=_guard,
                  after=(_refresh_known_hosts, _close_old_port),
                  hosts=lambda session: session.hosts())


def run(session: Session) -> bool:
    """Converge every selected host; stops at the first host that fails."""
    return run_host_layer(session, LAYER)
