"""Targets: where steps run. A remote host over SSH and the local machine look alike.

Both run a *script* (shell text) and return a :class:`Result`. Scripts never travel in
argv: on a host the script is sent on the SSH channel's stdin, saved by root into a
0600 file under /run and executed from there with stdin closed, so file contents and
secrets embedded in a script are never visible in ``ps`` or logs.
"""

from __future__ import annotations

import getpass
import logging
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import paramiko
from fabric import Config, Connection

from tasks.engine.errors import CommandFailed, ConnectionFailed, UserError
from tasks.engine.facts import Fact, Facts, batch_script, split_output
from tasks.engine.shell import cmd

# paramiko logs transport failures with tracebacks from its own thread; we report them
# as one line instead (see SshTarget._connect), so keep its log quiet.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

SUDO_PASSWORD_ENV = "STACK_SUDO_PASSWORD"  # noqa: S105 - the variable name, not a secret

LOCK = "/run/stack.lock"
LOCK_WAIT = 900
# Runs as root: save the script from stdin to a private file, run it with stdin closed,
# one at a time per host: a run killed locally can leave its script running on the host,
# and a re-run must wait for it rather than race it (exit 75 if it does not end).
_RUNNER = (
    'umask 077; f=$(mktemp /run/stack-script.XXXXXX) || exit 125; '
    'trap \'rm -f "$f"\' EXIT; cat >"$f"; '
    'if command -v flock >/dev/null 2>&1; then exec 9>' + LOCK + '; '
    'flock -w ' + str(LOCK_WAIT) + ' 9 || { echo "another run still holds ' + LOCK
    + ' on this host" >&2; exit 75; }; fi; sh "$f" </dev/null'
)


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    rc: int

    @property
    def ok(self) -> bool:
        return self.rc == 0


class Target(Protocol):
    """Anything steps can run on: a host over SSH, or this machine."""

    name: str
    round_trips: int

    def run(self, script: str, *, timeout: float | None = None) -> Result:
        """Run ``script`` (as root on hosts) and return its result; never raises on rc."""
        ...


def gather(target: Target, facts: Iterable[Fact[Any]]) -> Facts:
    """Read many facts in one round trip."""
    wanted = {f.key: f for f in facts}
    if not wanted:
        return Facts({})
    text, token = batch_script(wanted.values())
    result = target.run(text)
    raw = split_output(result.stdout, token)
    missing = sorted(set(wanted) - set(raw))
    if missing:
        raise CommandFailed(f"{target.name}: reading facts {', '.join(missing)}", result.rc,
                            result.stderr)
    return Facts(raw)


# Local ---------------------------------------------------------------------------------

@dataclass
class LocalTarget:
    """This machine: helm, kubectl, sops and friends run here, as the current user."""

    name: str = "local"
    env: dict[str, str] = field(default_factory=dict)
    round_trips: int = 0

    def run(self, script: str, *, timeout: float | None = None) -> Result:
        self.round_trips += 1
        with tempfile.NamedTemporaryFile("w", prefix="stack-", suffix=".sh") as f:
            f.write(script)
            f.flush()
            try:
                proc = subprocess.run(
                    ["sh", f.name], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                    timeout=timeout, env={**os.environ, **self.env}, check=False,
                )
            except subprocess.TimeoutExpired:
                return Result("", f"timed out after {timeout:.0f}s", 124)
        return Result(proc.stdout, proc.stderr, proc.returncode)


# SSH -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SshSettings:
    """How to reach one host; built from an inventory host entry."""

    address: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    trust_new_host_key: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 1800.0

    @property
    def label(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


def sudo_password_from_env_or_prompt(host: str) -> str:
    """The sudo password: ``$STACK_SUDO_PASSWORD``, else a prompt when interactive."""
    value = os.environ.get(SUDO_PASSWORD_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise UserError(f"{host}: sudo needs a password: set {SUDO_PASSWORD_ENV} or run in a"
                        " terminal to be prompted (or allow passwordless sudo for this user)")
    return getpass.getpass(f"sudo password for {host}: ")


class _RecordingPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown host keys (remembering them for the message), or trust them once."""

    def __init__(self, trust: bool, known_hosts: Path) -> None:
        self.trust = trust
        self.known_hosts = known_hosts
        self.seen: paramiko.PKey | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        self.seen = key
        if not self.trust:
            raise paramiko.SSHException("unknown host key")
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(self.known_hosts))


class SshTarget:
    """A host reached over SSH (Fabric connection, paramiko channels).

    Scripts run as root: directly when the login user is root, else through sudo,
    passwordless or with a password fed on stdin (never in argv).
    """

    def __init__(self, name: str, settings: SshSettings,
                 sudo_password: Callable[[str], str] = sudo_password_from_env_or_prompt) -> None:
        self.name = name
        self.settings = settings
        self.round_trips = 0
        #: Our address and the server's SSH port as the host sees them ($SSH_CONNECTION).
        self.client_address = ""
        self.server_port = 0
        self._sudo_password_source = sudo_password
        self._sudo_password: str | None = None
        self._sudo: list[str] | None = None
        self._conn: Connection | None = None

    # connection ------------------------------------------------------------------------
    def _connect(self) -> Connection:
        s = self.settings
        conn = Connection(
            s.address, user=s.user, port=s.port, connect_timeout=int(s.connect_timeout),
            config=Config(overrides={"load_ssh_configs": False}),
            connect_kwargs={
                "key_filename": str(s.key_file), "look_for_keys": False, "allow_agent": True,
                "banner_timeout": s.connect_timeout, "auth_timeout": s.connect_timeout,
            },
        )
        client = paramiko.SSHClient()
        if s.known_hosts.exists():
            client.load_host_keys(str(s.known_hosts))
        policy = _RecordingPolicy(s.trust_new_host_key, s.known_hosts)
        client.set_missing_host_key_policy(policy)
        conn.client = client
        where = f"{self.name} ({s.label})"
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            raise ConnectionFailed(
                f"{where}: HOST KEY MISMATCH: {s.known_hosts} has {_fp(exc.expected_key)},"
                f" the host offers {_fp(exc.key)}; if the host was rebuilt, remove its line"
                f" from {s.known_hosts}, else do not connect") from None
        except paramiko.AuthenticationException:
            raise ConnectionFailed(
                f"{where}: authentication failed with key {s.key_file}: check hosts[].user and"
                " hosts[].key_file, and that the public key is in the user's"
                " ~/.ssh/authorized_keys") from None
        except paramiko.PasswordRequiredException:
            raise ConnectionFailed(
                f"{where}: key {s.key_file} is passphrase-protected: load it into ssh-agent"
                f" first (ssh-add {s.key_file})") from None
        except paramiko.SSHException as exc:
            if policy.seen is not None and not s.trust_new_host_key:
                raise ConnectionFailed(
                    f"{where}: unknown host key {_fp(policy.seen)}: compare it with the"
                    " provider's console, then re-run with --trust-new-host-key to record it"
                    f" in {s.known_hosts}") from None
            if "banner" in str(exc) or "No existing session" in str(exc):
                raise ConnectionFailed(
                    f"{where}: cannot connect: no SSH handshake within"
                    f" {s.connect_timeout:.0f}s (not an SSH port, or the host drops us:"
                    " firewall, fail2ban, MaxStartups)") from None
            raise ConnectionFailed(f"{where}: SSH failed: {exc}") from None
        except (OSError, EOFError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (
                getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
            raise ConnectionFailed(
                f"{where}: cannot connect: {reason} (after {s.connect_timeout:.0f}s"
                " timeout); check hosts[].address/port and that SSH is reachable") from None
        return conn

    def open(self) -> None:
        """Connect, learn our address as the host sees it, and how to become root."""
        if self._conn is not None:
            return
        self._conn = self._connect()
        probe = 'printf "%s\\n" "$SSH_CONNECTION"; '
        if self.settings.user != "root":
            probe += "sudo -n true >/dev/null 2>&1; echo $?"
        result = self._exec(probe, b"")
        first, _, rest = result.stdout.partition("\n")
        fields = first.split()
        if len(fields) == 4:
            self.client_address, self.server_port = fields[0], int(fields[3])
        if self.settings.user == "root":
            self._sudo = []
        elif rest.strip() == "0":
            self._sudo = ["sudo", "-n", "--"]
        else:
            self._sudo_password = self._sudo_password_source(self.name)
            self._sudo = ["sudo", "-k", "-S", "-p", "", "--"]
            check = self._exec(cmd(*self._sudo, "true"), (self._sudo_password + "\n").encode())
            if check.rc != 0:
                raise UserError(f"{self.name}: sudo refused the password for user"
                                f" {self.settings.user} (or the user may not use sudo)")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SshTarget:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # running ---------------------------------------------------------------------------
    def run(self, script: str, *, timeout: float | None = None) -> Result:
        self.open()
        assert self._sudo is not None
        stdin = script.encode()
        if self._sudo_password is not None:
            stdin = (self._sudo_password + "\n").encode() + stdin
        command = cmd(*self._sudo, "sh", "-c", _RUNNER)
        return self._exec(command, stdin, timeout or self.settings.command_timeout)

    def run_on_fresh_connection(self, script: str) -> Result:
        """Open a brand-new SSH connection, run ``script`` as root, close it.

        Proves that a *new* login still works after access-related changes.
        """
        fresh = SshTarget(self.name, self.settings, lambda _h: self._sudo_password or "")
        try:
            fresh.open()
            return fresh.run(script, timeout=self.settings.connect_timeout * 3)
        finally:
            self.round_trips += fresh.round_trips
            fresh.close()

    def _exec(self, command: str, stdin: bytes, timeout: float | None = None) -> Result:
        assert self._conn is not None
        self.round_trips += 1
        transport = self._conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectionFailed(f"{self.name}: SSH connection lost")
        chan = transport.open_session(timeout=self.settings.connect_timeout)
        try:
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            return _drain(chan, timeout)
        finally:
            chan.close()


def _drain(chan: paramiko.Channel, timeout: float | None) -> Result:
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if chan.exit_status_ready() and chan.eof_received and not (
                chan.recv_ready() or chan.recv_stderr_ready()):
            break
        if deadline is not None and time.monotonic() > deadline:
            return Result(out.decode(errors="replace"),
                          f"timed out after {timeout:.0f}s", 124)
        select.select([chan], [], [], 0.2)
    return Result(out.decode(errors="replace"), err.decode(errors="replace"),
                  chan.recv_exit_status())


def _fp(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


__all__ = ["LocalTarget", "Result", "SshSettings", "SshTarget", "Target", "gather"]
