"""The files on this machine a connecting task needs: SSH private keys, known_hosts.

Checked at load time, before any connection, and only when the task will connect
(``require_key_files``): a directory, a FIFO, a public key or junk given as a key file,
or a known_hosts file that is not one, is refused with one line naming the field and
the normalised path (and for known_hosts the first bad line number, never the line).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from pathlib import Path

from tasks.model.fields import escape

KEY_HEADERS = frozenset(f"-----BEGIN {kind}PRIVATE KEY-----".encode() for kind in (
    "OPENSSH ", "RSA ", "EC ", "DSA ", "", "ENCRYPTED "))
MAX_KNOWN_HOSTS = 16 << 20

_HOST_CHARS = r"[A-Za-z0-9.*?_:%-]+"
_HOST_PATTERN = re.compile(rf"!?(\[{_HOST_CHARS}\]:[0-9]{{1,5}}|{_HOST_CHARS})")
_KEY_TYPE = re.compile(r"[a-z0-9][a-z0-9@.-]*")
MARKERS = ("@cert-authority", "@revoked")


def shown(path: Path) -> str:
    """A path as messages show it: normalised (``..`` folded), escaped, cut."""
    return escape(os.path.normpath(path), 200)


def _kind(path: Path, what: str) -> str | None:
    """Why ``path`` cannot be read as a ``what`` (None when it is a regular file)."""
    if path.is_dir():
        return f"{shown(path)} is a directory, not a {what}"
    if not path.is_file():
        return f"{shown(path)} is not a regular file, not a {what}"
    return None


def key_file_error(path: Path) -> str | None:
    """Why ``path`` is not a private key file SSH could use, or None."""
    if not path.exists():
        return (f"file not found: {shown(path)} (create one with ssh-keygen -t ed25519, or"
                " fix the path)")
    problem = _kind(path, "private key file")
    if problem:
        return problem
    try:
        with path.open("rb") as f:
            first = f.readline(128).strip()
    except OSError as exc:
        return f"cannot read {shown(path)}: {exc.strerror}"
    if first not in KEY_HEADERS:
        return (f"{shown(path)} is not a private key: its first line is not a -----BEGIN ..."
                " PRIVATE KEY----- header (the .pub file?)")
    return None


def known_hosts_error(path: Path) -> str | None:
    """Why ``path`` is not a known_hosts file, or None; a missing file is fine (first
    contact: the task records the host key with --trust-new-host-key)."""
    if not path.exists():
        return None
    problem = _kind(path, "known_hosts file")
    if problem:
        return problem
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KNOWN_HOSTS + 1)
    except OSError as exc:
        return f"cannot read {shown(path)}: {exc.strerror}"
    if len(data) > MAX_KNOWN_HOSTS:
        return f"{shown(path)} is larger than 16 MiB: not a known_hosts file"
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not _known_hosts_line(line):
            return (f"{shown(path)} line {number} is not a known_hosts entry (host patterns,"
                    " key type, base64 key); is host.ssh.known_hosts the right file?")
    return None


def _known_hosts_line(raw: bytes) -> bool:
    """A comment, a blank line, or ``[@marker] hosts key-type base64-key [comment]``."""
    try:
        fields = raw.decode("utf-8").split()
    except UnicodeDecodeError:
        return False
    if not fields or fields[0].startswith("#"):
        return True
    if fields[0].startswith("@"):
        if fields[0] not in MARKERS:
            return False
        fields = fields[1:]
    if len(fields) < 3:
        return False
    hosts, key_type, blob = fields[:3]
    return _hosts(hosts) and bool(_KEY_TYPE.fullmatch(key_type)) and _blob(key_type, blob)


def _hosts(field: str) -> bool:
    if field.startswith("|"):  # hashed: |1|base64(salt)|base64(hmac)
        parts = field.split("|")
        return (len(parts) == 4 and parts[:2] == ["", "1"]
                and all(_b64(p) is not None for p in parts[2:]))
    return all(_HOST_PATTERN.fullmatch(p) for p in field.split(","))


def _blob(key_type: str, text: str) -> bool:
    """The base64 key, whose SSH wire form starts with its own type name."""
    raw = _b64(text)
    if raw is None or len(raw) < 4:
        return False
    (length,) = struct.unpack(">I", raw[:4])
    return raw[4:4 + length] == key_type.encode()


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True) or None
    except (binascii.Error, ValueError):
        return None
