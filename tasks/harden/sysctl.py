"""Kernel settings: hardening that keeps K3s working, and what kubelet's
``protect-kernel-defaults`` demands (it refuses to start when these differ).

IPv6 router advertisements are refused (with address autoconfiguration) only where the
host does not depend on them: a VPS whose IPv6 address and default route come from its
provider's router advertisements would lose IPv6 otherwise. ``auto`` (the default of
``host.kernel.accept_ra``) decides by the routes: any learnt from an advertisement
(``proto ra``) means the host relies on them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, file_fact
from tasks.engine.shell import cmd, q, write_file
from tasks.engine.step import Change, Step

# Sorts after the distribution's files (procps' 99-protect-links.conf sets fs.protected_fifos
# = 1), so these values are the ones in force after a reboot.
SYSCTL_FILE = "/etc/sysctl.d/99-zz-stack-hardening.conf"

# (key, value, why). Keys the running kernel lacks are skipped, not failed.
SETTINGS: list[tuple[str, str, str]] = [
    ("net.ipv4.ip_forward", "1", "K3s routes pod traffic (flannel)"),
    ("net.ipv4.conf.all.accept_redirects", "0", "ignore ICMP redirects"),
    ("net.ipv4.conf.default.accept_redirects", "0", "ignore ICMP redirects"),
    ("net.ipv6.conf.all.accept_redirects", "0", "ignore ICMP redirects"),
    ("net.ipv6.conf.default.accept_redirects", "0", "ignore ICMP redirects"),
    ("net.ipv4.conf.all.send_redirects", "0", "we are not a router for others"),
    ("net.ipv4.conf.default.send_redirects", "0", "we are not a router for others"),
    ("net.ipv4.conf.all.accept_source_route", "0", "no source routing"),
    ("net.ipv4.conf.default.accept_source_route", "0", "no source routing"),
    ("net.ipv4.conf.all.secure_redirects", "0", "not even redirects from our gateways"),
    ("net.ipv4.conf.default.secure_redirects", "0", "not even redirects from our gateways"),
    ("net.ipv6.conf.all.accept_source_route", "0", "no source routing"),
    ("net.ipv6.conf.default.accept_source_route", "0", "no source routing"),
    ("net.ipv4.conf.all.log_martians", "1", "log impossible addresses"),
    ("net.ipv4.conf.default.log_martians", "1", "log impossible addresses"),
    # 2 (loose): a packet whose source is unreachable by any route is dropped; strict (1)
    # would drop pod traffic that returns over another interface than Flannel sent it.
    ("net.ipv4.conf.all.rp_filter", "2", "drop spoofed sources, loose for Flannel"),
    ("net.ipv4.conf.default.rp_filter", "2", "drop spoofed sources, loose for Flannel"),
    ("net.ipv4.conf.all.arp_ignore", "1", "answer ARP only for the asking interface"),
    ("net.ipv4.conf.all.arp_announce", "2", "announce only addresses of that interface"),
    ("net.ipv4.tcp_rfc1337", "1", "drop RSTs for sockets in TIME-WAIT"),
    ("net.ipv4.icmp_ratelimit", "100", "at most one ICMP reply per 100 ms and target"),
    # bits of the ICMP types limited: echo and timestamp replies and the error messages
    ("net.ipv4.icmp_ratemask", "88089", "rate-limit replies and errors"),
    ("net.ipv4.icmp_echo_ignore_broadcasts", "1", "no smurf amplification"),
    ("net.ipv4.icmp_ignore_bogus_error_responses", "1", "quiet bogus ICMP"),
    ("net.ipv4.tcp_syncookies", "1", "SYN flood protection"),
    ("kernel.kptr_restrict", "2", "hide kernel pointers, from root too"),
    ("kernel.sysrq", "0", "no magic SysRq key combinations"),
    ("kernel.randomize_va_space", "2", "full address space randomisation"),
    ("kernel.core_uses_pid", "1", "a core file names its process"),
    ("kernel.unprivileged_bpf_disabled", "1", "BPF programs for root only"),
    ("net.core.bpf_jit_harden", "2", "harden the BPF JIT for every user"),
    ("kernel.dmesg_restrict", "1", "kernel log for root only"),
    ("kernel.yama.ptrace_scope", "1", "ptrace only descendants"),
    ("fs.protected_hardlinks", "1", "link hardening"),
    ("fs.protected_symlinks", "1", "link hardening"),
    ("fs.protected_fifos", "2", "no FIFO spoofing in sticky dirs"),
    ("fs.protected_regular", "2", "no file spoofing in sticky dirs"),
    ("fs.suid_dumpable", "0", "no core dumps of setuid programs"),
    ("kernel.core_pattern", "|/bin/false", "no core dumps at all: cores go to /bin/false"),
    # kubelet --protect-kernel-defaults (K3s config: protect-kernel-defaults: true)
    ("vm.panic_on_oom", "0", "kubelet protect-kernel-defaults"),
    ("vm.overcommit_memory", "1", "kubelet protect-kernel-defaults"),
    ("kernel.panic", "10", "kubelet protect-kernel-defaults"),
    ("kernel.panic_on_oops", "1", "kubelet protect-kernel-defaults"),
    ("kernel.keys.root_maxkeys", "1000000", "kubelet protect-kernel-defaults"),
    ("kernel.keys.root_maxbytes", "25000000", "kubelet protect-kernel-defaults"),
]

# Router advertisements and autoconfiguration off: only where the host does not rely on them.
RA_SETTINGS: list[tuple[str, str, str]] = [
    ("net.ipv6.conf.all.accept_ra", "0", "no router advertisements"),
    ("net.ipv6.conf.default.accept_ra", "0", "no router advertisements"),
    ("net.ipv6.conf.default.accept_ra_defrtr", "0", "no default route from one"),
    ("net.ipv6.conf.default.accept_ra_pinfo", "0", "no prefix from one"),
    ("net.ipv6.conf.default.accept_ra_rtr_pref", "0", "no router preference from one"),
    ("net.ipv6.conf.default.autoconf", "0", "no autoconfigured addresses"),
    ("net.ipv6.conf.default.router_solicitations", "0", "do not ask for routers"),
    ("net.ipv6.conf.default.max_addresses", "1", "one autoconfigured address at most"),
]
_ALL = [*SETTINGS, *RA_SETTINGS]


def _values(raw: Raw) -> dict[str, str | None]:
    """``sysctl -e k1 k2 ...`` prints ``key = value`` for the keys this kernel has."""
    out: dict[str, str | None] = dict.fromkeys((k for k, _, _ in _ALL), None)
    for line in raw.stdout.splitlines():
        key, sep, value = line.partition(" = ")
        if sep and key in out:
            out[key] = " ".join(value.split())
    return out


LIVE = Fact("sysctl:live", "sysctl -e " + " ".join(q(k) for k, _, _ in _ALL), _values)
RA_ROUTES = Fact("ipv6:ra-routes", "ip -6 route show proto ra",
                 lambda raw: raw.rc == 0 and bool(raw.stdout.strip()))
CONTENT = file_fact(SYSCTL_FILE)


UFW_SYSCTL = "/etc/ufw/sysctl.conf"
UFW_CONTENT = file_fact(UFW_SYSCTL)
_WANTED = {k: v for k, v, _ in _ALL}


def wanted(refuse_ra: bool) -> list[tuple[str, str, str]]:
    return [*SETTINGS, *RA_SETTINGS] if refuse_ra else SETTINGS


def config(present: set[str], refuse_ra: bool = True) -> str:
    # sysctl.d files allow comments on their own lines only.
    body = [f"# {why}\n{k} = {v}" for k, v, why in wanted(refuse_ra) if k in present]
    return "\n".join(["# Managed by k3s-vps-platform (inv host.harden).", *body, ""])


def ufw_conflicts(content: str | None, settings: Sequence[tuple[str, str, str]] = SETTINGS
                  ) -> list[str]:
    """Keys ufw re-applies with other values whenever it starts (at every boot).

    /etc/ufw/sysctl.conf (``IPT_SYSCTL``) is written as ``net/ipv4/...=value``; a key we
    manage with a different value there would silently undo ours after a reboot.
    """
    values = {k: v for k, v, _ in settings}
    found = []
    for line in (content or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith(("#", ";")):
            continue
        dotted = key.strip().replace("/", ".")
        if dotted in values and value.strip() != values[dotted]:
            found.append(key.strip())
    return found


class Sysctl(Step):
    """``accept_ra``: the inventory's ``host.kernel.accept_ra`` (auto, yes or no)."""

    id = "sysctl"
    name = "kernel: sysctl hardening"

    def __init__(self, accept_ra: str = "auto") -> None:
        self.accept_ra = accept_ra

    def facts(self) -> Sequence[Fact[Any]]:
        return [LIVE, CONTENT, UFW_CONTENT, RA_ROUTES]

    def refuse_ra(self, facts: Facts) -> bool:
        return self.accept_ra == "no" or (self.accept_ra == "auto" and not facts[RA_ROUTES])

    def plan(self, facts: Facts) -> list[Change]:
        live = facts[LIVE]
        present = {k for k, v in live.items() if v is not None}
        settings = wanted(self.refuse_ra(facts))
        changes = []
        rewrite = facts[CONTENT] != config(present, self.refuse_ra(facts))
        if rewrite:
            changes.append(Change(f"write {SYSCTL_FILE}", write_file(
                SYSCTL_FILE, config(present, self.refuse_ra(facts)))))
        conflicts = ufw_conflicts(facts[UFW_CONTENT], settings)
        if conflicts:
            expressions = [f"s|^[[:space:]]*{re.escape(k)}[[:space:]]*=|"
                           f"# overridden by host.harden ({SYSCTL_FILE}): &|" for k in conflicts]
            changes.append(Change(
                f"comment out {', '.join(conflicts)} in {UFW_SYSCTL} (ufw re-applies it)",
                cmd("sed", "-i", *(a for e in expressions for a in ("-e", e)), UFW_SYSCTL)
                + "\n"))
        drift = [k for k, v, _ in settings if k in present and live[k] != v]
        if rewrite or drift:
            shown = ", ".join(f"{k} is {live[k]}, want {_WANTED[k]}" for k in drift[:3])
            more = f" and {len(drift) - 3} more" if len(drift) > 3 else ""
            what = f"{shown}{more}" if drift else "load the file"
            changes.append(Change(f"apply with sysctl ({what})",
                                  cmd("sysctl", "-q", "-p", SYSCTL_FILE) + "\n"))
        return changes

    def notes(self, facts: Facts) -> list[str]:
        if self.accept_ra == "auto" and not self.refuse_ra(facts):
            return ["IPv6 router advertisements kept: this host has routes learnt from them"
                    " (host.kernel.accept_ra: no refuses them anyway)"]
        return []
