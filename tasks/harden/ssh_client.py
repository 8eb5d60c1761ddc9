"""The host's own SSH client (``ssh`` run on the node, by root or anyone): nothing
forwarded to the servers it reaches, keys only, host keys checked, and the same
algorithm lists as our sshd.

A drop-in under ``/etc/ssh/ssh_config.d`` sorting first: Debian's and Ubuntu's
``ssh_config`` include that folder before their ``Host *`` block, and ssh keeps the first
value it reads, so these win over the shipped defaults (``GSSAPIAuthentication yes``) while
a user's own ``~/.ssh/config`` still comes before them for that user. Verified with
``ssh -G``, the client's effective configuration. Not an access change: the dead-man
switch does not guard it (it restores /etc/ssh as a whole anyway). Other drop-ins setting
the same keywords get them commented out, as sshd's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, file_fact, lines
from tasks.engine.shell import write_file
from tasks.engine.step import Change, Step
from tasks.harden.sshd import CIPHERS, KEX, MACS, SUPPORTED_KEX, neutralise, other_drop_ins

CLIENT_CONFIG = "/etc/ssh/ssh_config"
DROP_IN_DIR = "/etc/ssh/ssh_config.d"
DROP_IN = f"{DROP_IN_DIR}/00-stack-hardening.conf"
INCLUDE_LINE = f"Include {DROP_IN_DIR}/*.conf"

# (keyword as spelled in the file, the value ``ssh -G`` prints)
SETTINGS: list[tuple[str, str]] = [
    ("ForwardAgent", "no"),
    ("ForwardX11", "no"),
    ("ForwardX11Trusted", "no"),
    ("PermitLocalCommand", "no"),
    ("HostbasedAuthentication", "no"),
    ("GSSAPIAuthentication", "no"),
    ("PasswordAuthentication", "no"),
    ("KbdInteractiveAuthentication", "no"),
    ("StrictHostKeyChecking", "ask"),
    ("CheckHostIP", "yes"),
    ("HashKnownHosts", "yes"),
    ("Compression", "no"),
]


def _effective(raw: Raw) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines(raw):
        key, _, value = line.partition(" ")
        out.setdefault(key.lower(), value.strip())
    return out


_KEYWORDS = [*(k for k, _ in SETTINGS), "Ciphers", "MACs", "KexAlgorithms"]
OTHER_DROP_INS = other_drop_ins("ssh:client-other-drop-ins", DROP_IN_DIR, DROP_IN, _KEYWORDS)
EFFECTIVE = Fact("ssh:client-effective", f"ssh -G -F {CLIENT_CONFIG} localhost", _effective)
CONTENT = file_fact(DROP_IN)
HAS_INCLUDE = Fact("ssh:client-include",
                   "grep -qiE '^[[:space:]]*Include[[:space:]]+/etc/ssh/ssh_config\\.d/\\*\\.conf'"
                   f" {CLIENT_CONFIG}", lambda raw: raw.rc == 0)


def _kex(supported: set[str]) -> list[str]:
    return [k for k in KEX if k in supported] or KEX[2:]


def config(supported_kex: set[str]) -> str:
    return "\n".join([
        "# Managed by k3s-vps-platform (inv host.harden): local edits are overwritten.",
        "# The SSH client on this host: no forwarding, keys only, our sshd's algorithms.",
        *(f"{k} {v}" for k, v in SETTINGS),
        f"Ciphers {','.join(CIPHERS)}",
        f"MACs {','.join(MACS)}",
        f"KexAlgorithms {','.join(_kex(supported_kex))}",
        "",
    ])


def expected(supported_kex: set[str]) -> dict[str, str]:
    """What ``ssh -G`` must print once the drop-in is read."""
    return {**{k.lower(): v for k, v in SETTINGS}, "ciphers": ",".join(CIPHERS),
            "macs": ",".join(MACS), "kexalgorithms": ",".join(_kex(supported_kex))}


class SshClient(Step):
    id = "ssh-client"
    name = "ssh client: system-wide defaults"

    def facts(self) -> Sequence[Fact[Any]]:
        return [SUPPORTED_KEX, CONTENT, HAS_INCLUDE, OTHER_DROP_INS, EFFECTIVE]

    def plan(self, facts: Facts) -> list[Change]:
        changes = []
        wanted = config(facts[SUPPORTED_KEX])
        if facts[CONTENT] != wanted:
            changes.append(Change(f"write {DROP_IN}", f"mkdir -p {DROP_IN_DIR}\n"
                                  + write_file(DROP_IN, wanted)))
        changes += [neutralise(path, _KEYWORDS) for path in facts[OTHER_DROP_INS]]
        if not facts[HAS_INCLUDE]:
            changes.append(Change(f"include {DROP_IN_DIR}/*.conf from {CLIENT_CONFIG}",
                                  f"sed -i '1i {INCLUDE_LINE}' {CLIENT_CONFIG}\n"))
        return changes

    def verify(self, facts: Facts) -> list[str]:
        live = facts[EFFECTIVE]
        return [f"ssh -G: {k} is {live.get(k, 'unset')!r}, want {v!r}"
                for k, v in expected(facts[SUPPORTED_KEX]).items() if live.get(k) != v
                ] + super().verify(facts)
