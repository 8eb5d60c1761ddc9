"""Per-VM identity and secrets, made on this machine and handed to the guest by qemu.

Each VM gets fresh SSH host keys (Ed25519, ECDSA, RSA 3072, made with ``ssh-keygen``),
a fresh machine-id, an ``admin`` user with its own Ed25519 key pair and a random
password, and a random root password. The guest receives them as one tar archive
through qemu ``-fw_cfg`` (no disk image is mounted); a oneshot unit baked into the base
image applies it at first boot, before sshd starts. Passwords only travel hashed
(``openssl passwd -6``, password on stdin); the plain ones stay in 0600 files here.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tasks.labvm import tools
from tasks.labvm.paths import VmPaths

ADMIN = "admin"
# ssh-keygen -t TYPE [-b BITS], as Debian's openssh-server makes them (RSA 3072 bits).
HOST_KEY_TYPES: tuple[tuple[str, list[str]], ...] = (
    ("ed25519", []), ("ecdsa", ["-b", "256"]), ("rsa", ["-b", "3072"]))


@dataclass(frozen=True)
class Identity:
    """What the host side keeps knowing about a VM's identity."""

    machine_id: str
    host_keys: list[str]  # public keys, "ssh-ed25519 AAAA... root@lab1"


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a file only the owner can read (0600), replacing it."""
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, raw)
    finally:
        os.close(fd)


def hash_password(password: str) -> str:
    """SHA-512 crypt hash (``$6$...``) for /etc/shadow; the password goes on stdin."""
    out = tools.run(["openssl", "passwd", "-6", "-stdin"], what="openssl passwd",
                    stdin=(password + "\n").encode())
    hashed = out.strip()
    if not hashed.startswith("$6$"):
        raise ValueError("openssl passwd -6 returned no SHA-512 crypt hash")
    return hashed


def keygen(path: Path, key_type: str, extra: list[str], comment: str) -> None:
    """A new key pair without passphrase at ``path`` and ``path.pub``."""
    tools.run(["ssh-keygen", "-q", "-t", key_type, *extra, "-N", "", "-C", comment,
               "-f", path], what=f"ssh-keygen -t {key_type}")


def node_network(index: int) -> str:
    """systemd-networkd's file for the second NIC: a static address on the nodes' net."""
    from tasks.labvm.net import node_address, node_mac

    return (f"[Match]\nMACAddress={node_mac(index)}\n\n[Network]\n"
            f"Address={node_address(index)}/24\n")


def create(vm: VmPaths, *, sudo_password: bool, node_index: int = 0) -> Identity:
    """Make the VM's keys and passwords under ``vm.dir`` and its seed archive."""
    tools.require("ssh-keygen", "openssl")
    name = vm.name
    vm.dir.mkdir(parents=True, exist_ok=True)
    vm.dir.chmod(0o700)
    for p in (vm.key, vm.key.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    keygen(vm.key, "ed25519", [], f"{ADMIN}@{name}")
    password, root_password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    write_private(vm.password, password + "\n")
    write_private(vm.root_password, root_password + "\n")
    machine_id = secrets.token_hex(16)
    files: dict[str, tuple[bytes, int]] = {
        "hostname": (f"{name}\n".encode(), 0o644),
        "machine-id": (f"{machine_id}\n".encode(), 0o444),
        "authorized_keys": (vm.key.with_suffix(".pub").read_bytes(), 0o600),
        "admin.hash": (hash_password(password).encode(), 0o600),
        "root.hash": (hash_password(root_password).encode(), 0o600),
        "sudo": (b"password\n" if sudo_password else b"nopasswd\n", 0o644),
    }
    if node_index:
        files["nodes.network"] = (node_network(node_index).encode(), 0o644)
    host_keys = []
    tmp = Path(tempfile.mkdtemp(prefix=".hostkeys-", dir=vm.dir))
    try:
        for key_type, extra in HOST_KEY_TYPES:
            key = tmp / f"ssh_host_{key_type}_key"
            keygen(key, key_type, extra, f"root@{name}")
            pub = key.with_name(key.name + ".pub").read_bytes()
            files[key.name] = (key.read_bytes(), 0o600)
            files[key.name + ".pub"] = (pub, 0o644)
            host_keys.append(pub.decode().strip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_private(vm.seed, seed_archive(files))
    vm.host_keys_pub.write_text("\n".join(host_keys) + "\n")
    return Identity(machine_id, host_keys)


def seed_archive(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar archive with ``files`` under ``seed/``, owned by root, with their modes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(f"seed/{name}")
            info.size, info.mode, info.uid, info.gid = len(data), mode, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read_secret(path: Path) -> str:
    return path.read_text().strip()
