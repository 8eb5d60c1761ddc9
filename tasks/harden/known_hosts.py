"""Keep the project known_hosts in step with host keys we regenerate ourselves."""

from __future__ import annotations

import base64
from pathlib import Path

import paramiko

from tasks.engine.facts import Fact, lines
from tasks.engine.target import SshTarget, gather

PUBLIC_KEYS = Fact("sshd:public-keys", "cat /etc/ssh/ssh_host_ed25519_key.pub"
                   " /etc/ssh/ssh_host_rsa_key.pub", lines)


def host_entry(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def refresh(target: SshTarget, known_hosts: Path) -> list[str]:
    """Replace entries of this host whose key *type* we rotated; returns the types changed.

    Only types already recorded are touched: trust is never extended to new hosts here,
    and the key comes over the connection we just authenticated with the recorded key.
    """
    if not known_hosts.exists():
        return []
    entry = host_entry(target.settings.address, target.settings.port)
    keys = paramiko.HostKeys(str(known_hosts))
    recorded = keys.lookup(entry)
    if recorded is None:
        return []
    changed = []
    for line in gather(target, [PUBLIC_KEYS])[PUBLIC_KEYS]:
        kind, _, rest = line.partition(" ")
        if kind not in recorded:
            continue
        new = paramiko.PKey.from_type_string(kind, base64.b64decode(rest.split()[0]))
        if recorded[kind] != new:
            keys.add(entry, kind, new)
            changed.append(kind)
    if changed:
        keys.save(str(known_hosts))
    return changed
