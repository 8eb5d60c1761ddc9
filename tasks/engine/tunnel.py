"""A local port forwarded over an SSH connection (``ssh -L``), for the Kubernetes API.

The listening socket is bound (to 127.0.0.1, a port the kernel picks) before the
context is entered, so a client may connect at once; each accepted connection gets a
``direct-tcpip`` channel to ``remote_host:remote_port`` as the host sees it, and two
threads copying bytes. Leaving the context closes the listener and every channel.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import paramiko

from tasks.engine.errors import ConnectionFailed


@contextmanager
def forward(transport: paramiko.Transport, remote_host: str, remote_port: int,
            *, name: str = "host") -> Iterator[int]:
    """Yield a local port on 127.0.0.1 that reaches ``remote_host:remote_port``."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port: int = server.getsockname()[1]
    stop = threading.Event()
    open_channels: list[paramiko.Channel] = []
    failures: list[str] = []

    def serve() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([server], [], [], 0.2)
            if not ready:
                continue
            try:
                client, peer = server.accept()
            except OSError:
                return
            try:
                chan = transport.open_channel("direct-tcpip", (remote_host, remote_port), peer,
                                              timeout=15)
            except (paramiko.SSHException, OSError) as exc:
                failures.append(str(exc) or type(exc).__name__)
                client.close()
                continue
            open_channels.append(chan)
            threading.Thread(target=_pump, args=(client, chan, stop), daemon=True).start()

    acceptor = threading.Thread(target=serve, daemon=True, name=f"tunnel-{name}")
    acceptor.start()
    try:
        yield port
    finally:
        stop.set()
        server.close()
        acceptor.join(timeout=5)
        for chan in open_channels:
            with contextlib.suppress(Exception):
                chan.close()
    if failures and not open_channels:
        raise ConnectionFailed(f"{name}: the SSH tunnel to {remote_host}:{remote_port} was"
                               f" refused ({failures[0]}): is TCP forwarding allowed by sshd,"
                               " and does something listen there?")


def _pump(client: socket.socket, chan: paramiko.Channel, stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            ready, _, _ = select.select([client, chan], [], [], 0.2)
            if client in ready:
                data = client.recv(65536)
                if not data:
                    break
                chan.sendall(data)
            if chan in ready:
                data = chan.recv(65536)
                if not data:
                    break
                client.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(Exception):
            chan.close()
        with contextlib.suppress(Exception):
            client.close()
