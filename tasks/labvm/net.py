"""Ports on 127.0.0.1 for the SSH forward; waiting for the guest's SSH banner and host key."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import paramiko

HOST = "127.0.0.1"
DEFAULT_PORT = 2222
#: A second SSH port on the guest, forwarded too, so that tests can move sshd there
#: (host.ssh.port) and back.
GUEST_ALT_SSH_PORT = 2222

#: The nodes' network: lab VMs given a node index share one Ethernet segment (a qemu
#: multicast socket on loopback) where VM n is 10.99.0.n, as cluster nodes on a private
#: network. Only those VMs are on it.
NODE_NET_MCAST = "230.0.0.1:23456"
NODE_NET_PREFIX = "10.99.0"


def node_address(index: int) -> str:
    return f"{NODE_NET_PREFIX}.{index}"


def node_mac(index: int) -> str:
    return f"52:54:00:99:00:{index:02x}"


def port_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on ``host:port`` (qemu could bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def pick_port(wanted: int, taken: set[int] | None = None,
              is_free: Callable[[int], bool] = port_free,
              any_free: Callable[[], int] = free_port) -> int:
    """``wanted`` when free (and not ``taken`` by another lab VM), else another free port."""
    taken = taken or set()
    if wanted not in taken and is_free(wanted):
        return wanted
    for _ in range(20):
        port = any_free()
        if port not in taken:
            return port
    raise OSError("no free TCP port on 127.0.0.1")


def read_banner(port: int, host: str = HOST, timeout: float = 5.0) -> bytes:
    """The first line the server sends on ``host:port`` (b"" when nothing answers)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 256:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\n", 1)[0].strip()
    except OSError:
        return b""


def wait_for_ssh(port: int, timeout: float, alive: Callable[[], bool],
                 host: str = HOST, interval: float = 1.0) -> str | None:
    """Wait until ``host:port`` sends an SSH banner; return it.

    Returns None on timeout. Stops early (returning None) when ``alive()`` turns false,
    i.e. the VM died. qemu accepts forwarded connections before the guest listens, so
    only a banner proves sshd is up.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return None
        banner = read_banner(port, host, timeout=min(5.0, max(0.5, deadline - time.monotonic())))
        if banner.startswith(b"SSH-"):
            return banner.decode(errors="replace")
        time.sleep(interval)
    return None


def server_host_key(port: int, key_type: str = "ssh-ed25519", host: str = HOST,
                    timeout: float = 30.0) -> str:
    """The base64 host key of type ``key_type`` that the SSH server on ``host:port`` offers."""
    transport = paramiko.Transport((host, port))
    try:
        transport.get_security_options().key_types = [key_type]
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key().get_base64()
    finally:
        transport.close()
