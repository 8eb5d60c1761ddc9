"""Inventory texts for the input-hardening tests: a valid base, writing, refusing."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from tasks.engine.errors import InventoryError
from tasks.model import load

REPO = Path(__file__).resolve().parents[2]

# Messages pinned by both test files.
ZONE = ("has a zone id (%...), which is not allowed: it would reach ufw rules and the"
        " fail2ban jail")
DOMAIN = "expected a domain name such as example.com (at most 253 characters)"
NOT_A_KEY = ("is not a private key: its first line is not a -----BEGIN ... PRIVATE KEY-----"
             " header (the .pub file?)")
# The first line of an OpenSSH private key file, put together so that no tracked file
# holds the marker secret scanners look for (no key material is ever in the tests).
OPENSSH_HEADER = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n"
BASE = """\
domain: example.com
acme_email: ops@example.com
operators: [203.0.113.10/32]
hosts:
  - {name: vps1, address: 203.0.113.20, user: admin, key_file: id_test}
"""


def inventory(tmp_path: Path, text: str | bytes, name: str = "inventory.yaml") -> Path:
    (tmp_path / "id_test").write_text(OPENSSH_HEADER + "AAAA\n")
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def refused(tmp_path: Path, text: str | bytes, **kw: bool) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load(inventory(tmp_path, text), **kw)
    assert info.value.exit_code == 2
    return info.value.lines



def billion_laughs(levels: int = 8) -> str:
    """Each level 9 aliases of the one before: 9**8 strings once expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return BASE + "\n".join(lines) + f"\ndomain2: *a{levels}\n"


def ssh_blob(key_type: str, body: bytes = b"\x00" * 32) -> str:
    """A public key in SSH wire form, base64: its type name, then a body."""
    name = key_type.encode()
    raw = struct.pack(">I", len(name)) + name + struct.pack(">I", len(body)) + body
    return base64.b64encode(raw).decode()
