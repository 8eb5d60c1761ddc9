"""Checks of each host over SSH: its port, its host key, the login, sudo.

Nothing is written: the host key is compared with the project known_hosts (an unknown
key is a failure with the way to check it, never trusted), the login goes through
:class:`~tasks.engine.target.SshTarget` with ``record_host_keys`` off, and sudo is tried
without a password or with ``$STACK_SUDO_PASSWORD`` on stdin (never a prompt, never a
command line). The only script run as root is a read (``id -u`` and whether K3s runs),
the way every task's script runs: saved by the login user to a private temporary file on
the host, run through sudo, removed.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from tasks.doctor.findings import Finding, fail, ok, skipped, warn
from tasks.doctor.network import tcp_problem
from tasks.engine.errors import ConnectionFailed, UserError
from tasks.engine.target import (
    SUDO_PASSWORD_ENV,
    SshSettings,
    SshTarget,
    env_sudo_password,
    host_entry,
)

PORT_TIMEOUT = 5.0
PROBE = "id -u; systemctl is-active k3s 2>/dev/null || true"
RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def check_port(name: str, address: str, ports: Sequence[int],
               timeout: float = PORT_TIMEOUT) -> tuple[Finding, int | None]:
    """The first of ``ports`` (the host's SSH ports, first choice first) that accepts TCP."""
    check = f"{name} ssh port"
    tried: list[str] = []
    for port in ports:
        why = tcp_problem(address, port, timeout)
        if why is None:
            if port == ports[0]:
                return ok(check, f"{address}:{port} accepts TCP"), port
            return warn(check, f"{address}:{port} accepts TCP, not {ports[0]}"
                        f" ({'; '.join(tried)}); the tasks will use {port}",
                        "set hosts[].port to the port sshd listens on"), port
        tried.append(f"{port}: {why}")
    return fail(check, f"{address}: no SSH port answers ({'; '.join(tried)})",
                "check hosts[].address and hosts[].port, that the host is up, and the"
                " provider's firewall"), None


def offered_key(address: str, port: int, timeout: float,
                preferred: Sequence[str] = ()) -> paramiko.PKey:
    """The host key sshd at ``address:port`` offers (a handshake, no login)."""
    sock = socket.create_connection((address, port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        if preferred:
            # known_hosts names RSA keys ssh-rsa; sshd signs with rsa-sha2-* nowadays.
            wanted = [a for k in preferred for a in (RSA_ALGORITHMS if k == "ssh-rsa" else (k,))]
            options = transport.get_security_options()
            known = list(options.key_types)
            options.key_types = [*(k for k in wanted if k in known),
                                 *(k for k in known if k not in wanted)]
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    finally:
        transport.close()


def _known(known_hosts: Path) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    if known_hosts.exists():
        keys.load(str(known_hosts))
    return keys


def check_host_key(name: str, address: str, port: int, ports: Sequence[int],
                   known_hosts: Path, timeout: float = PORT_TIMEOUT) -> Finding:
    """The key offered on ``port`` against known_hosts (this port, else another of the
    host's ports: the tasks accept the same key there)."""
    check = f"{name} host key"
    scan = (f"ssh-keyscan -p {port} {address} | ssh-keygen -lf -, compare with the"
            " provider's console, then record it: inv host.harden --check"
            " --trust-new-host-key")
    try:
        known = _known(known_hosts)
    except (OSError, UnicodeError, paramiko.SSHException, ValueError) as exc:
        return fail(check, f"{known_hosts}: not a usable known_hosts file"
                    f" ({type(exc).__name__})", "fix or remove it")
    entry = known.lookup(host_entry(address, port))
    try:
        key = offered_key(address, port, timeout, list(entry.keys()) if entry else [])
    except (OSError, EOFError, paramiko.SSHException) as exc:
        return fail(check, f"{address}:{port}: no SSH handshake ({exc or type(exc).__name__})",
                    "check that sshd listens there (not another service)")
    if entry is not None:
        if entry.get(key.get_name()) == key:
            return ok(check, f"{fingerprint(key)} matches {known_hosts}")
        expected = ", ".join(fingerprint(k) for k in entry.values())
        return fail(check, f"HOST KEY MISMATCH: {known_hosts} has {expected} for"
                    f" {host_entry(address, port)}, the host offers {fingerprint(key)}",
                    f"do not connect; if the host was rebuilt, compare with the provider's"
                    f" console, remove its line from {known_hosts} and record the new key")
    for other in ports:
        found = known.lookup(host_entry(address, other))
        if other != port and found is not None and found.get(key.get_name()) == key:
            return ok(check, f"{fingerprint(key)} matches {known_hosts} (recorded for"
                      f" port {other}: the same server)")
    return fail(check, f"unknown host key {fingerprint(key)}: not in {known_hosts}", scan)


def _no_prompt(host: str) -> str:
    password = env_sudo_password()
    if not password:
        raise UserError(f"{host}: sudo needs a password: set {SUDO_PASSWORD_ENV} (doctor"
                        " never prompts), or allow passwordless sudo for this user")
    return password


@dataclass(frozen=True)
class Access:
    login: Finding
    sudo: Finding
    #: Whether the host said K3s is running (None: could not ask).
    k3s_running: bool | None = None


def check_access(name: str, settings: SshSettings) -> Access:
    """Log in with the configured user and key, then run a read as root through sudo."""
    settings = replace(settings, fallback_ports=(), trust_new_host_key=False,
                       record_host_keys=False)
    asked: list[bool] = []

    def password(host: str) -> str:
        asked.append(True)
        return _no_prompt(host)

    target = SshTarget(name, settings, sudo_password=password)
    login_ok = ok(f"{name} login", f"{settings.label} with key {settings.key_file}")
    try:
        target.open()
        result = target.run(PROBE, timeout=settings.connect_timeout * 3)
    except ConnectionFailed as exc:
        return Access(fail(f"{name} login", str(exc), f"add {settings.key_file}.pub to the"
                           f" ~/.ssh/authorized_keys of {settings.user} on the host (ssh-copy-id"
                           f" -i {settings.key_file}.pub -p {settings.port}"
                           f" {settings.user}@{settings.address} where a login works), or fix"
                           " hosts[].user / hosts[].key_file"),
                      skipped(f"{name} sudo", "login failed"))
    except (paramiko.SSHException, OSError, EOFError) as exc:
        return Access(fail(f"{name} login", f"{name} ({settings.label}): SSH failed:"
                           f" {exc or type(exc).__name__}", "run inv doctor again; if it"
                           " persists, check sshd's log on the host"),
                      skipped(f"{name} sudo", "login failed"))
    except UserError as exc:
        return Access(login_ok, fail(f"{name} sudo", str(exc), "give the user sudo (usermod -aG"
                                     f" sudo {settings.user}) and set {SUDO_PASSWORD_ENV}, or"
                                     " allow it passwordless sudo"))
    finally:
        target.close()
    lines = result.stdout.split()
    if not result.ok or not lines or lines[0] != "0":
        why = {124: "no answer in time", 75: "another run holds /run/stack.lock there"}.get(
            result.rc, f"exit {result.rc}")
        return Access(login_ok, fail(f"{name} sudo", f"a command through sudo did not run as"
                                     f" root ({why})", "check the user's sudo rules (sudo -l"
                                     " on the host), or wait for the other run to end"))
    how = f"with ${SUDO_PASSWORD_ENV} on stdin" if asked else "passwordless"
    state = lines[1] if len(lines) > 1 else None  # no systemctl: cannot tell
    return Access(login_ok, ok(f"{name} sudo", f"root through sudo ({how})"),
                  None if state is None else state == "active")
