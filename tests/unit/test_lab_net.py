"""Free-port logic and the SSH banner wait of the lab (local sockets only)."""

from __future__ import annotations

import socket
import threading

from tasks.labvm import net


def test_busy_port_is_not_free() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not net.port_free(port)
    assert net.port_free(port)


def test_pick_port_keeps_wanted_when_free() -> None:
    assert net.pick_port(2222, is_free=lambda p: True, any_free=lambda: 40000) == 2222


def test_pick_port_moves_when_busy() -> None:
    assert net.pick_port(2222, is_free=lambda p: False, any_free=lambda: 40000) == 40000


def test_pick_port_avoids_ports_of_other_lab_vms() -> None:
    """A stopped VM's port is free now but belongs to it: do not give it away."""
    candidates = iter([2223, 40001])
    port = net.pick_port(2223, taken={2223}, is_free=lambda p: True,
                         any_free=lambda: next(candidates))
    assert port == 40001


def test_pick_port_real_sockets() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        port = net.pick_port(busy)
        assert port != busy
        assert net.port_free(port)


def serve_once(payload: bytes) -> tuple[int, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                if payload:
                    conn.sendall(payload)

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    return server.getsockname()[1], t


def test_wait_for_ssh_reads_banner() -> None:
    port, t = serve_once(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7\r\n")
    banner = net.wait_for_ssh(port, timeout=5, alive=lambda: True, interval=0.05)
    t.join(2)
    assert banner == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7"


def test_wait_for_ssh_ignores_accepted_but_silent_connections() -> None:
    """qemu's forward accepts before the guest's sshd listens: that is not 'up'."""
    port, t = serve_once(b"")
    assert net.wait_for_ssh(port, timeout=0.5, alive=lambda: True, interval=0.05) is None
    t.join(2)


def test_wait_for_ssh_stops_when_vm_dies() -> None:
    assert net.wait_for_ssh(1, timeout=30, alive=lambda: False) is None
