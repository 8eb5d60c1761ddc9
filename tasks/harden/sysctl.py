"""Kernel settings: hardening that keeps K3s working, and what kubelet's
``protect-kernel-defaults`` demands (it refuses to start when these differ)."""

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
    ("net.ipv4.conf.all.log_martians", "1", "log impossible addresses"),
    ("net.ipv4.icmp_echo_ignore_broadcasts", "1", "no smurf amplification"),
    ("net.ipv4.icmp_ignore_bogus_error_responses", "1", "quiet bogus ICMP"),
    ("net.ipv4.tcp_syncookies", "1", "SYN flood protection"),
    ("kernel.kptr_restrict", "1", "hide kernel pointers"),
    ("kernel.dmesg_restrict", "1", "kernel log for root only"),
    ("kernel.yama.ptrace_scope", "1", "ptrace only descendants"),
    ("fs.protected_hardlinks", "1", "link hardening"),
    ("fs.protected_symlinks", "1", "link hardening"),
    ("fs.protected_fifos", "2", "no FIFO spoofing in sticky dirs"),
    ("fs.protected_regular", "2", "no file spoofing in sticky dirs"),
    ("fs.suid_dumpable", "0", "no core dumps of setuid programs"),
    # kubelet --protect-kernel-defaults (K3s config: protect-kernel-defaults: true)
    ("vm.panic_on_oom", "0", "kubelet protect-kernel-defaults"),
    ("vm.overcommit_memory", "1", "kubelet protect-kernel-defaults"),
    ("kernel.panic", "10", "kubelet protect-kernel-defaults"),
    ("kernel.panic_on_oops", "1", "kubelet protect-kernel-defaults"),
    ("kernel.keys.root_maxkeys", "1000000", "kubelet protect-kernel-defaults"),
    ("kernel.keys.root_maxbytes", "25000000", "kubelet protect-kernel-defaults"),
]


def _values(raw: Raw) -> dict[str, str | None]:
    """``sysctl -e k1 k2 ...`` prints ``key = value`` for the keys this kernel has."""
    out: dict[str, str | None] = dict.fromkeys((k for k, _, _ in SETTINGS), None)
    for line in raw.stdout.splitlines():
        key, sep, value = line.partition(" = ")
        if sep and key in out:
            out[key] = " ".join(value.split())
    return out


LIVE = Fact("sysctl:live", "sysctl -e " + " ".join(q(k) for k, _, _ in SETTINGS), _values)
CONTENT = file_fact(SYSCTL_FILE)


UFW_SYSCTL = "/etc/ufw/sysctl.conf"
UFW_CONTENT = file_fact(UFW_SYSCTL)
_WANTED = {k: v for k, v, _ in SETTINGS}


def config(present: set[str]) -> str:
    # sysctl.d files allow comments on their own lines only.
    body = [f"# {why}\n{k} = {v}" for k, v, why in SETTINGS if k in present]
    return "\n".join(["# Managed by k3s-vps-platform (inv host.harden).", *body, ""])


def ufw_conflicts(content: str | None) -> list[str]:
    """Keys ufw re-applies with other values whenever it starts (at every boot).

    /etc/ufw/sysctl.conf (``IPT_SYSCTL``) is written as ``net/ipv4/...=value``; a key we
    manage with a different value there would silently undo ours after a reboot.
    """
    found = []
    for line in (content or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith(("#", ";")):
            continue
        dotted = key.strip().replace("/", ".")
        if dotted in _WANTED and value.strip() != _WANTED[dotted]:
            found.append(key.strip())
    return found


class Sysctl(Step):
    id = "sysctl"
    name = "kernel: sysctl hardening"

    def facts(self) -> Sequence[Fact[Any]]:
        return [LIVE, CONTENT, UFW_CONTENT]

    def plan(self, facts: Facts) -> list[Change]:
        live = facts[LIVE]
        present = {k for k, v in live.items() if v is not None}
        wanted = config(present)
        changes = []
        rewrite = facts[CONTENT] != wanted
        if rewrite:
            changes.append(Change(f"write {SYSCTL_FILE}", write_file(SYSCTL_FILE, wanted)))
        conflicts = ufw_conflicts(facts[UFW_CONTENT])
        if conflicts:
            expressions = [f"s|^[[:space:]]*{re.escape(k)}[[:space:]]*=|"
                           f"# overridden by host.harden ({SYSCTL_FILE}): &|" for k in conflicts]
            changes.append(Change(
                f"comment out {', '.join(conflicts)} in {UFW_SYSCTL} (ufw re-applies it)",
                cmd("sed", "-i", *(a for e in expressions for a in ("-e", e)), UFW_SYSCTL)
                + "\n"))
        drift = [k for k, v, _ in SETTINGS if k in present and live[k] != v]
        if rewrite or drift:
            shown = ", ".join(f"{k} is {live[k]}, want {_WANTED[k]}" for k in drift[:3])
            more = f" and {len(drift) - 3} more" if len(drift) > 3 else ""
            what = f"{shown}{more}" if drift else "load the file"
            changes.append(Change(f"apply with sysctl ({what})",
                                  cmd("sysctl", "-q", "-p", SYSCTL_FILE) + "\n"))
        return changes
