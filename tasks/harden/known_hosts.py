"""Keep the project known_hosts in step with host keys we regenerate ourselves."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path

import paramiko

from tasks.engine.facts import Fact, lines
from tasks.engine.target import SshTarget, gather, host_entry

PUBLIC_KEYS = Fact("sshd:public-keys", "cat /etc/ssh/ssh_host_ed25519_key.pub"
                   " /etc/ssh/ssh_host_rsa_key.pub", lines)


def _matches(field: str, entry: str) -> bool:
    """Whether a known_hosts host field (patterns, or one ``|1|salt|hash``) names ``entry``."""
    for pattern in field.split(","):
        if pattern.startswith("|1|"):
            try:
                _, _, salt, digest = pattern.split("|")
                mac = hmac.new(base64.b64decode(salt), entry.encode(), hashlib.sha1).digest()
            except (ValueError, TypeError):
                continue
            if hmac.compare_digest(base64.b64encode(mac).decode(), digest):
                return True
        elif pattern == entry:
            return True
    return False


def replace_keys(text: str, entries: Sequence[str], new: dict[str, str]) -> tuple[str, list[str]]:
    """``text`` with the keys of ``entries`` replaced by ``new`` ({type: base64}) where a
    line of that type exists; other lines (comments included) are kept byte for byte."""
    out, changed = [], []
    for line in text.splitlines(keepends=True):
        words = line.split()
        if (len(words) >= 3 and not line.lstrip().startswith(("#", "@"))
                and words[1] in new and words[2] != new[words[1]]
                and any(_matches(words[0], e) for e in entries)):
            ending = "\n" if line.endswith("\n") else ""
            line = " ".join([words[0], words[1], new[words[1]], *words[3:]]) + ending
            changed.append(words[1])
        out.append(line)
    return "".join(out), sorted(set(changed))


def refresh(target: SshTarget, known_hosts: Path, ports: Sequence[int]) -> list[str]:
    """Replace this host's recorded keys whose *type* we rotated; returns the types changed.

    Only types already recorded are touched: trust is never extended to new hosts here,
    and the key comes over the connection we just authenticated with the recorded key.
    """
    if not known_hosts.exists():
        return []
    entries = [host_entry(target.settings.address, p) for p in dict.fromkeys(ports)]
    new: dict[str, str] = {}
    for line in gather(target, [PUBLIC_KEYS])[PUBLIC_KEYS]:
        words = line.split()
        if len(words) >= 2:
            try:
                paramiko.PKey.from_type_string(words[0], base64.b64decode(words[1]))
            except (ValueError, paramiko.SSHException):
                continue
            new[words[0]] = words[1]
    text, changed = replace_keys(known_hosts.read_text(), entries, new)
    if changed:
        tmp = known_hosts.with_name(known_hosts.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(known_hosts)
    return changed
