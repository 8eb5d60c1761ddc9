"""Targets: where steps run. A remote host over SSH and the local machine look alike.

Both run a *script* (shell text) and return a :class:`Result`. Scripts never travel in
argv: on a host the script is sent on the SSH channel's stdin, saved by root into a
0600 file under /run and executed from there with stdin closed, so file contents and
secrets embedded in a script are never visible in ``ps`` or logs.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

import paramiko
from fabric import Config, Connection

from tasks.engine.command import Command
from tasks.engine.errors import CommandFailed, ConnectionFailed, UserError
from tasks.engine.facts import STDERR_CAP, Fact, Facts, Raw, batch_script, split_output
from tasks.engine.shell import PROGRESS, cmd
from tasks.engine.tunnel import forward

# paramiko logs transport failures with tracebacks from its own thread; we report them
# as one line instead (see SshTarget._connect), so keep its log quiet.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

SUDO_PASSWORD_ENV = "STACK_SUDO_PASSWORD"  # noqa: S105 - the variable name, not a secret

LOCK = "/run/stack.lock"
LOCK_WAIT = 900
# Runs as root, given the path of the script the login user saved (mode 0600): copy it to a
# private root-owned file, run it with stdin closed, one at a time per host: a run killed
# locally can leave its script running on the host, and a re-run must wait for it rather
# than race it (exit 75 if it does not end).
_RUNNER = (
    'umask 077; f=$(mktemp /run/stack-script.XXXXXX) || exit 125; '
    'trap \'rm -f "$f"\' EXIT; cat "$1" >"$f" || exit 125; rm -f "$1"; '
    'if command -v flock >/dev/null 2>&1; then exec 9>' + LOCK + '; '
    'flock -w ' + str(LOCK_WAIT) + ' 9 || { echo "another run still holds ' + LOCK
    + ' on this host" >&2; exit 75; }; fi; sh "$f" </dev/null'
)
_SUDO_PROMPT = "@@stack-sudo-prompt@@"

OnOutput = Callable[[str], None]
#: Receives a script's stdout as raw bytes as they arrive (a backup streamed to age):
#: that output is then neither kept nor shown.
Sink = Callable[[bytes], None]


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

    @property
    def name(self) -> str: ...

    @property
    def round_trips(self) -> int:
        """Scripts run so far (SSH round trips on a host)."""
        ...

    def run(self, script: str, *, timeout: float | None = None,
            on_output: OnOutput | None = None) -> Result:
        """Run ``script`` (as root on hosts) and return its result; never raises on rc.

        ``on_output`` receives each line of output as it arrives (progress lines without
        their marker), for a live progress display.
        """
        ...

    def exec(self, command: Command, *, on_output: OnOutput | None = None) -> Result:
        """Run one argv with its stdin (no shell on this machine); never raises on rc."""
        ...

    def upload(self, local: Path, remote: str, *, on_output: OnOutput | None = None) -> None:
        """Copy ``local`` to ``remote`` (mode 0600); raises CommandFailed on failure."""
        ...


def gather(target: Target, facts: Iterable[Fact[Any]]) -> Facts:
    """Read many facts in one round trip (plus one per ``exec`` fact)."""
    wanted = {f.key: f for f in facts}
    batched = [f for f in wanted.values() if f.exec is None]
    raw: dict[str, Raw] = {}
    if batched:
        text, token = batch_script(batched)
        result = target.run(text)
        raw = split_output(result.stdout, token)
        missing = sorted({f.key for f in batched} - set(raw))
        if missing:
            raise CommandFailed(f"{target.name}: reading facts {', '.join(missing)}",
                                result.rc, result.stderr)
    for fact in wanted.values():
        if fact.exec is not None:
            done = target.exec(fact.exec)
            raw[fact.key] = Raw(done.stdout, done.rc, done.stderr[-STDERR_CAP:])
    return Facts(raw)


class _Lines:
    """Splits a stream into lines as bytes arrive; progress lines go to the callback only."""

    def __init__(self, on_output: OnOutput | None, *, stderr: bool,
                 sink: Sink | None = None) -> None:
        self.on_output, self.stderr, self.sink = on_output, stderr, sink
        self.kept = bytearray()
        self._pending = b""

    def feed(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink(data)
            return
        self._pending += data
        *complete, self._pending = self._pending.split(b"\n")
        for raw in complete:
            self._line(raw)

    def close(self) -> None:
        if self._pending:
            self._line(self._pending, newline=False)
            self._pending = b""

    def _line(self, raw: bytes, newline: bool = True) -> None:
        line = raw.decode(errors="replace")
        if self.stderr and line.startswith(PROGRESS):
            if self.on_output:
                self.on_output(line.removeprefix(PROGRESS))
            return
        if self.stderr and _SUDO_PROMPT in line:
            line = line.replace(_SUDO_PROMPT, "")
            if not line:
                return
            raw = line.encode()
        self.kept += raw + (b"\n" if newline else b"")
        if self.on_output and line.strip():
            self.on_output(line.rsplit("\r", 1)[-1])


#: The secrets.init inputs (tasks.secrets.binaries.INPUT_ENV_PREFIX).
SECRET_INPUT_PREFIX = "STACK_SECRET_"  # noqa: S105 (a variable name prefix)


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for local child processes: ours without the sudo password and
    without the ``STACK_SECRET_*`` inputs of secrets.init (an operator may still have
    them set when deploying: kubectl and helm must not inherit them)."""
    env = {k: v for k, v in os.environ.items()
           if k != SUDO_PASSWORD_ENV and not k.startswith(SECRET_INPUT_PREFIX)}
    env.update(extra or {})
    return env


# Local ---------------------------------------------------------------------------------

@dataclass
class LocalTarget:
    """This machine: helm, kubectl, sops and friends run here, as the current user."""

    name: str = "local"
    env: dict[str, str] = field(default_factory=dict)
    round_trips: int = 0

    def run(self, script: str, *, timeout: float | None = None,
            on_output: OnOutput | None = None, stdout_to: Sink | None = None) -> Result:
        with tempfile.NamedTemporaryFile("w", prefix="stack-", suffix=".sh") as f:
            f.write(script)
            f.flush()
            return self.exec(Command(("sh", f.name), timeout=timeout), on_output=on_output,
                             stdout_to=stdout_to)

    def exec(self, command: Command, *, on_output: OnOutput | None = None,
             stdout_to: Sink | None = None) -> Result:
        self.round_trips += 1
        try:
            proc = subprocess.Popen(list(command.argv), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=child_environment(self.env))
        except OSError as exc:
            return Result("", f"cannot run {command.argv[0]}: {exc.strerror or exc}", 127)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        feeder = threading.Thread(target=_feed, args=(proc.stdin, command.stdin), daemon=True)
        feeder.start()
        out = _Lines(on_output, stderr=False, sink=stdout_to)
        err = _Lines(on_output, stderr=True)
        streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
        timeout = command.timeout
        deadline = time.monotonic() + timeout if timeout else None
        while streams:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(list(streams), [], [], wait)
            if not ready:
                proc.kill()
                proc.wait()
                return Result(out.kept.decode(errors="replace"),
                              f"timed out after {timeout:.0f}s", 124)
            for fd in ready:
                data = os.read(fd, 65536)
                if data:
                    streams[fd].feed(data)
                else:
                    streams.pop(fd).close()
        proc.wait()
        feeder.join()
        proc.stdout.close()
        proc.stderr.close()
        return Result(out.kept.decode(errors="replace"), err.kept.decode(errors="replace"),
                      proc.returncode)

    def upload(self, local: Path | bytes, remote: str, *,
               on_output: OnOutput | None = None) -> None:
        self.round_trips += 1
        try:
            _copy_private(local, remote)
        except OSError as exc:
            what = "data" if isinstance(local, bytes) else str(local)
            raise CommandFailed(f"copying {what} to {remote}", 1, str(exc)) from None


def _copy_private(local: Path | bytes, remote: str) -> None:
    tmp = f"{remote}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, _source(local) as src:
        shutil.copyfileobj(src, out, 1 << 20)
    os.replace(tmp, remote)


def _source(local: Path | bytes) -> IO[bytes]:
    return io.BytesIO(local) if isinstance(local, bytes) else local.open("rb")


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write ``data`` to a child's stdin, then close it (a child that exits early is fine)."""
    with contextlib.suppress(BrokenPipeError, OSError):
        if data:
            pipe.write(data)
    with contextlib.suppress(BrokenPipeError, OSError):
        pipe.close()


# SSH -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SshSettings:
    """How to reach one host; built from an inventory host entry.

    ``fallback_ports`` are tried, in order, when nothing answers on ``port`` (sshd being
    moved to another port, or moved back). ``record_host_keys`` is off in plan mode:
    a host key trusted with ``trust_new_host_key`` is then used but not written down.
    """

    address: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    trust_new_host_key: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 1800.0
    fallback_ports: tuple[int, ...] = ()
    record_host_keys: bool = True

    @property
    def label(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"

    def on_port(self, port: int) -> SshSettings:
        """The same host reached on another port (the others become fallbacks)."""
        others = tuple(p for p in (self.port, *self.fallback_ports) if p != port)
        return replace(self, port=port, fallback_ports=others)


_env_sudo_password: str | None = None


def scrub_environment() -> None:
    """Take ``$STACK_SUDO_PASSWORD`` out of this process's environment, keeping the value.

    Called once at start-up: no child process (helm, kubectl, ssh, scripts) can inherit it.
    """
    global _env_sudo_password
    value = os.environ.pop(SUDO_PASSWORD_ENV, None)
    if value:
        _env_sudo_password = value


def env_sudo_password() -> str | None:
    """``$STACK_SUDO_PASSWORD`` (taken out of the environment on first use), or None."""
    scrub_environment()
    return _env_sudo_password


def sudo_password_from_env_or_prompt(host: str) -> str:
    """The sudo password: ``$STACK_SUDO_PASSWORD``, else a prompt when interactive."""
    password = env_sudo_password()
    if password:
        return password
    if not sys.stdin.isatty():
        raise UserError(f"{host}: sudo needs a password: set {SUDO_PASSWORD_ENV} or run in a"
                        " terminal to be prompted (or allow passwordless sudo for this user)")
    return getpass.getpass(f"sudo password for {host}: ")


def host_entry(address: str, port: int) -> str:
    """How known_hosts names ``address:port``."""
    return address if port == 22 else f"[{address}]:{port}"


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Decide about a key known_hosts does not list for this address and port.

    Accepted: a key known_hosts already lists for the same address on another of this
    host's ports (sshd moved; the same server); a new key only with ``trust``. Accepted
    keys are appended to known_hosts (never rewriting the file) unless ``record`` is off.
    Anything else is refused, and remembered for the message.
    """

    def __init__(self, settings: SshSettings) -> None:
        self.settings = settings
        self.seen: paramiko.PKey | None = None
        self.recorded: str | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        s = self.settings
        self.seen = key
        known = client.get_host_keys()
        same_server = any(
            (entry := known.lookup(host_entry(s.address, p))) is not None
            and entry.get(key.get_name()) == key
            for p in (s.port, *s.fallback_ports))
        if not (same_server or s.trust_new_host_key):
            raise paramiko.SSHException("unknown host key")
        known.add(hostname, key.get_name(), key)
        if s.record_host_keys:
            s.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with s.known_hosts.open("a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            self.recorded = hostname


class SshTarget:
    """A host reached over SSH (Fabric connection, paramiko channels).

    Scripts run as root: directly when the login user is root, else through sudo. The
    script travels on stdin and is saved by the login user into a private file; root runs
    it from a copy, with stdin closed. A sudo password is sent after the script, so only
    sudo can ever read it: when sudo does not ask (NOPASSWD for sh), nobody reads it.
    """

    def __init__(self, name: str, settings: SshSettings,
                 sudo_password: Callable[[str], str] = sudo_password_from_env_or_prompt) -> None:
        self.name = name
        self.settings = settings
        self.round_trips = 0
        #: Our address and the server's SSH port as the host sees them ($SSH_CONNECTION).
        self.client_address = ""
        self.server_port = 0
        #: Set when the connection had to use a fallback port: a line for the operator.
        self.port_note = ""
        self._sudo_password_source = sudo_password
        self._sudo_password: str | None = None
        self._sudo: list[str] | None = None
        self._conn: Connection | None = None

    # connection ------------------------------------------------------------------------
    def _connect(self) -> Connection:
        s = self.settings
        tried: list[str] = []
        for port in (s.port, *s.fallback_ports):
            try:
                conn = self._connect_on(replace(s, port=port, fallback_ports=tuple(
                    p for p in (s.port, *s.fallback_ports) if p != port)))
            except _NoAnswer as exc:
                tried.append(f"port {port}: {exc}")
                continue
            if port != s.port:
                self.port_note = (f"nothing answers on port {s.port}; connected on port"
                                  f" {port}")
                self.settings = s.on_port(port)
            return conn
        where = f"{self.name} ({s.label})"
        if len(tried) == 1:
            raise ConnectionFailed(f"{where}: {tried[0].split(': ', 1)[1]}")
        raise ConnectionFailed(f"{where}: cannot connect on any SSH port ({'; '.join(tried)})")

    def _connect_on(self, s: SshSettings) -> Connection:
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
            try:
                client.load_host_keys(str(s.known_hosts))
            except (OSError, UnicodeError, paramiko.SSHException, ValueError) as exc:
                raise ConnectionFailed(f"{s.known_hosts}: not a usable known_hosts file"
                                       f" ({type(exc).__name__}); fix or remove it") from None
        policy = _HostKeyPolicy(s)
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
                raise _NoAnswer(
                    f"cannot connect: no SSH handshake within {s.connect_timeout:.0f}s (not an"
                    " SSH port, or the host drops us: firewall, fail2ban, MaxStartups)"
                ) from None
            raise ConnectionFailed(f"{where}: SSH failed: {exc}") from None
        except (OSError, EOFError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (
                getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
            raise _NoAnswer(
                f"cannot connect: {reason} (after {s.connect_timeout:.0f}s timeout); check"
                " hosts[].address/port and that SSH is reachable") from None
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
        if len(fields) == 4 and fields[3].isdigit():
            self.client_address, self.server_port = fields[0], int(fields[3])
        if self.settings.user == "root":
            self._sudo = []
        elif rest.strip() == "0":
            self._sudo = ["sudo", "-n", "--"]
        else:
            self._sudo_password = self._sudo_password_source(self.name)
            self._sudo = ["sudo", "-k", "-S", "-p", _SUDO_PROMPT, "--"]
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
    def run(self, script: str, *, timeout: float | None = None,
            on_output: OnOutput | None = None, stdout_to: Sink | None = None) -> Result:
        self.open()
        assert self._sudo is not None
        body = script.encode()
        # As the login user: save exactly len(body) bytes of stdin (head -c never reads
        # past them) into a 0600 file; root runs that. Whatever follows on stdin (the sudo
        # password) is left for sudo alone.
        command = (
            "umask 077; u=$(mktemp \"${TMPDIR:-/tmp}/stack-upload.XXXXXX\") || exit 125; "
            f"head -c {len(body)} >\"$u\" || {{ rm -f \"$u\"; exit 125; }}; "
            f"{cmd(*self._sudo, 'sh', '-c', _RUNNER, 'stack-runner')} \"$u\"; "
            "rc=$?; rm -f \"$u\"; exit $rc")
        stdin = body
        if self._sudo_password is not None:
            stdin += (self._sudo_password + "\n").encode()
        return self._exec(command, stdin, timeout or self.settings.command_timeout, on_output,
                          stdout_to)

    def exec(self, command: Command, *, on_output: OnOutput | None = None) -> Result:
        """One argv as root on the host; its stdin travels inside the script (base64)."""
        return self.run(command.as_script(), timeout=command.timeout, on_output=on_output)

    def upload(self, local: Path | bytes, remote: str, *,
               on_output: OnOutput | None = None) -> None:
        """SFTP ``local`` (a file, or bytes held in memory) to ``remote`` as the login user,
        mode 0600 (root's script then checks and installs it). Shows progress for large
        files."""
        self.open()
        assert self._conn is not None
        self.round_trips += 1
        size = len(local) if isinstance(local, bytes) else local.stat().st_size
        label = remote.rsplit("/", 1)[-1] if isinstance(local, bytes) else local.name
        last = [0.0]

        def progress(sent: int, total: int) -> None:
            if on_output and time.monotonic() - last[0] > 1:
                last[0] = time.monotonic()
                on_output(f"uploading {label}: {sent * 100 // max(total, 1)}%"
                          f" of {size // (1 << 20)} MiB")

        try:
            sftp = self._conn.client.open_sftp()
            try:
                with sftp.open(remote + ".part", "wb") as f:
                    f.chmod(0o600)
                with _source(local) as src:
                    sftp.putfo(src, remote + ".part", size, callback=progress, confirm=True)
                sftp.posix_rename(remote + ".part", remote)
            finally:
                sftp.close()
        except (OSError, paramiko.SSHException) as exc:
            raise CommandFailed(f"{self.name}: uploading {label} to {remote}", 1,
                                str(exc) or type(exc).__name__) from None

    @contextmanager
    def tunnel(self, remote_host: str, remote_port: int) -> Iterator[int]:
        """A local port on 127.0.0.1 reaching ``remote_host:remote_port`` from the host."""
        self.open()
        assert self._conn is not None
        transport = self._conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectionFailed(f"{self.name}: SSH connection lost")
        with forward(transport, remote_host, remote_port, name=self.name) as port:
            yield port

    def reconnect(self, port: int | None = None) -> SshTarget:
        """A new, unopened target for the same host, on ``port`` (default: the port of this
        connection) and no other, with the sudo password already known."""
        settings = replace(self.settings if port is None else self.settings.on_port(port),
                           fallback_ports=())
        known = self._sudo_password
        return SshTarget(self.name, settings,
                         (lambda _h: known) if known is not None else self._sudo_password_source)

    def run_on_fresh_connection(self, script: str, *, port: int | None = None) -> Result:
        """Open a brand-new SSH connection (on ``port``, default ours), run ``script``.

        Proves that a *new* login still works after access-related changes.
        """
        fresh = self.reconnect(port)
        try:
            fresh.open()
            return fresh.run(script, timeout=self.settings.connect_timeout * 3)
        finally:
            self.round_trips += fresh.round_trips
            fresh.close()

    def _exec(self, command: str, stdin: bytes, timeout: float | None = None,
              on_output: OnOutput | None = None, stdout_to: Sink | None = None) -> Result:
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
            return _drain(chan, timeout, on_output, stdout_to)
        finally:
            chan.close()


class _NoAnswer(Exception):
    """Nothing speaks SSH on that port (refused, timed out, no banner): try the next."""


def _drain(chan: paramiko.Channel, timeout: float | None, on_output: OnOutput | None,
           sink: Sink | None = None) -> Result:
    out, err = _Lines(on_output, stderr=False, sink=sink), _Lines(on_output, stderr=True)
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        while chan.recv_ready():
            out.feed(chan.recv(65536))
        while chan.recv_stderr_ready():
            err.feed(chan.recv_stderr(65536))
        if chan.exit_status_ready() and chan.eof_received and not (
                chan.recv_ready() or chan.recv_stderr_ready()):
            break
        if deadline is not None and time.monotonic() > deadline:
            out.close()
            return Result(out.kept.decode(errors="replace"),
                          f"timed out after {timeout:.0f}s", 124)
        select.select([chan], [], [], 0.2)
    out.close()
    err.close()
    return Result(out.kept.decode(errors="replace"), err.kept.decode(errors="replace"),
                  chan.recv_exit_status())


def _fp(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


__all__ = ["LocalTarget", "Result", "SshSettings", "SshTarget", "Target", "gather"]
