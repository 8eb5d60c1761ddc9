"""The SSH target against a real sshd: running, facts, sudo, host keys, errors."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tasks.engine.errors import ConnectionFailed, UserError
from tasks.engine.facts import Fact, file_fact, lines
from tasks.engine.shell import write_file
from tasks.engine.target import SshTarget, gather
from tests.integration.conftest import USER_NOPW, USER_PW, USER_SH, LocalSshd


def test_runs_scripts_as_root_and_reports_output(local_sshd: LocalSshd) -> None:
    with local_sshd.target() as t:
        r = t.run("id -u; echo oops >&2; exit 3")
    assert (r.stdout, r.stderr.strip(), r.rc) == ("0\n", "oops", 3)
    assert t.client_address == "127.0.0.1" and t.server_port == local_sshd.port


def test_large_content_travels_on_stdin_exactly(local_sshd: LocalSshd, tmp_path: Path) -> None:
    content = ("$HOME `id` 'quoted' \"double\" \\ back\n" * 20000) + "no newline at end"
    path = tmp_path / "big.txt"
    with local_sshd.target() as t:
        start = time.monotonic()
        r = t.run(write_file(str(path), content, mode="0600"))
        elapsed = time.monotonic() - start
    assert r.ok, r.stderr
    assert path.read_text() == content
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert elapsed < 20  # generous: invoke's char-by-char stdin would take minutes


def test_script_text_never_appears_in_process_arguments(local_sshd: LocalSshd) -> None:
    marker = "SECRET-" + "7f3a9c"
    with local_sshd.target() as t:
        r = t.run(f"cat >/dev/null <<'EOF'\n{marker}\nEOF\nps -eo args")
    assert r.ok
    assert marker not in r.stdout
    assert "stack-script" in r.stdout  # the script ran from its private file


def test_facts_are_gathered_in_one_round_trip(local_sshd: LocalSshd, tmp_path: Path) -> None:
    exact = tmp_path / "exact"
    exact.write_text("line one\nno trailing newline")
    facts = [
        Fact("echo", "echo hello; echo world", lines),
        Fact("fails", "echo partial; exit 4", lambda raw: (raw.stdout, raw.rc)),
        file_fact(str(exact)),
        file_fact(str(tmp_path / "missing")),
        Fact("stdin-closed", "cat; echo done", lambda raw: raw.stdout),
    ]
    with local_sshd.target() as t:
        before = t.round_trips
        got = gather(t, facts)
        assert t.round_trips - before == 1
    assert got[facts[0]] == ["hello", "world"]
    assert got[facts[1]] == ("partial\n", 4)
    assert got[facts[2]] == "line one\nno trailing newline"
    assert got[facts[3]] is None
    assert got[facts[4]] == "done\n"


def test_passwordless_sudo_user_runs_as_root(local_sshd: LocalSshd) -> None:
    with local_sshd.target(USER_NOPW) as t:
        assert t.run("id -u").stdout == "0\n"


def test_sudo_password_goes_on_stdin(local_sshd: LocalSshd) -> None:
    with local_sshd.target(USER_PW) as t:
        r = t.run("id -u; cat /proc/$PPID/cmdline | tr '\\0' ' '; ps -eo args")
    assert r.stdout.startswith("0\n"), r.stderr
    assert local_sshd.password not in r.stdout


def test_sudo_that_needs_no_password_for_sh_never_sees_the_password(
        local_sshd: LocalSshd) -> None:
    """sudoers: a password for everything but sh. `sudo -n true` fails, so the password is
    sent; `sudo sh` does not read it. It must never become part of the script."""
    with local_sshd.target(USER_SH) as t:
        r = t.run("id -u; echo ran; ps -eo args")
    assert r.ok, r.stderr
    assert r.stdout.startswith("0\nran\n")
    assert local_sshd.password not in r.stdout + r.stderr


def test_sudo_password_is_not_in_the_environment_of_child_processes(
        local_sshd: LocalSshd, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.engine import target as target_module
    from tasks.engine.target import LocalTarget, scrub_environment

    monkeypatch.setenv("STACK_SUDO_PASSWORD", local_sshd.password)
    monkeypatch.setattr(target_module, "_env_sudo_password", None)
    scrub_environment()
    assert "STACK_SUDO_PASSWORD" not in os.environ
    env = LocalTarget().run("env").stdout
    assert local_sshd.password not in env
    with SshTarget("local-sshd", local_sshd.settings(USER_PW)) as t:  # still usable
        assert t.run("id -u").stdout == "0\n"
    monkeypatch.setattr(target_module, "_env_sudo_password", None)


def test_wrong_sudo_password_is_one_clear_error(local_sshd: LocalSshd) -> None:
    t = SshTarget("local-sshd", local_sshd.settings(USER_PW), sudo_password=lambda _h: "wrong")
    with pytest.raises(UserError, match=f"sudo refused the password for user {USER_PW}"):
        t.open()
    t.close()


def test_sudo_password_from_environment(local_sshd: LocalSshd,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_SUDO_PASSWORD", local_sshd.password)
    with SshTarget("local-sshd", local_sshd.settings(USER_PW)) as t:
        assert t.run("id -u").stdout == "0\n"


def test_unknown_host_key_is_refused_then_trusted_explicitly(local_sshd: LocalSshd,
                                                             tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    t = SshTarget("h", local_sshd.settings(known_hosts=known))
    with pytest.raises(ConnectionFailed, match=r"unknown host key ssh-ed25519 SHA256:.*"
                       r"--trust-new-host-key"):
        t.open()
    assert not known.exists()
    with SshTarget("h", local_sshd.settings(known_hosts=known, trust_new_host_key=True)) as t2:
        assert t2.run("true").ok
    assert local_sshd.host_pub.split()[1] in known.read_text()
    with SshTarget("h", local_sshd.settings(known_hosts=known)) as t3:  # now known
        assert t3.run("true").ok


def test_changed_host_key_is_a_loud_error(local_sshd: LocalSshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    other = (local_sshd.dir / "other.pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{local_sshd.port} {other[0]} {other[1]}\n")
    with pytest.raises(ConnectionFailed, match="HOST KEY MISMATCH"):
        SshTarget("h", local_sshd.settings(known_hosts=known)).open()


def test_wrong_key_is_an_authentication_error(local_sshd: LocalSshd) -> None:
    t = SshTarget("h", local_sshd.settings(key_file=local_sshd.other_key))
    with pytest.raises(ConnectionFailed, match=r"authentication failed with key .*other"):
        t.open()


def test_closed_port_is_a_connection_error(local_sshd: LocalSshd) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = SshTarget("h", local_sshd.settings(port=port))
    with pytest.raises(ConnectionFailed, match=r"h \(root@127.0.0.1:\d+\): cannot connect"):
        t.open()


def test_silent_port_times_out_with_a_clear_line(local_sshd: LocalSshd) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # accepts TCP but never speaks SSH
        t = SshTarget("h", local_sshd.settings(port=server.getsockname()[1],
                                               connect_timeout=1.0))
        with pytest.raises(ConnectionFailed, match=r"cannot connect: no SSH handshake within 1s"):
            t.open()


def test_fresh_connection_is_independent(local_sshd: LocalSshd) -> None:
    with local_sshd.target(USER_PW) as t:
        before = t.round_trips
        r = t.run_on_fresh_connection("id -u")
        assert r.stdout == "0\n"
        assert t.round_trips > before
        assert t.run("echo still").stdout == "still\n"


def test_command_timeout(local_sshd: LocalSshd) -> None:
    with local_sshd.target() as t:
        r = t.run("sleep 5", timeout=1)
    assert r.rc == 124 and "timed out" in r.stderr


def test_runs_on_one_host_are_serialised(local_sshd: LocalSshd, tmp_path: Path) -> None:
    """A script left running by a killed run makes the next one wait, not race."""
    import threading

    log = tmp_path / "order"
    first = local_sshd.target()
    first.open()
    worker = threading.Thread(target=first.run, args=(
        f"echo start-a >>{log}; sleep 2; echo end-a >>{log}",))
    worker.start()
    time.sleep(0.8)
    with local_sshd.target() as second:
        second.run(f"echo start-b >>{log}")
    worker.join()
    first.close()
    assert log.read_text().split() == ["start-a", "end-a", "start-b"]


class Relay:
    """A second TCP port in front of the same sshd (as NAT or a moved port would be)."""

    def __init__(self, to_port: int) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(5)
        self.port = self.server.getsockname()[1]
        self.to_port = to_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.to_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_on_the_first_port_falls_back_to_the_next(local_sshd: LocalSshd) -> None:
    closed = _closed_port()
    t = SshTarget("h", local_sshd.settings(port=closed, fallback_ports=(local_sshd.port,)))
    with t:
        assert t.run("true").ok
    assert t.settings.port == local_sshd.port
    assert t.port_note == f"nothing answers on port {closed}; connected on port" \
                          f" {local_sshd.port}"


def test_the_same_host_key_on_another_of_its_ports_is_accepted_and_recorded(
        local_sshd: LocalSshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("# the project's known hosts\n" + local_sshd.known_hosts.read_text())
    relay = Relay(local_sshd.port)
    try:
        # plan mode: accepted for this run, not written down
        s = local_sshd.settings(port=relay.port, fallback_ports=(local_sshd.port,),
                                known_hosts=known, record_host_keys=False)
        with SshTarget("h", s) as t:
            assert t.run("true").ok
        assert str(relay.port) not in known.read_text()
        with SshTarget("h", replace(s, record_host_keys=True)) as t:
            assert t.run("true").ok
        text = known.read_text()
        assert text.startswith("# the project's known hosts\n")  # appended, not rewritten
        assert f"[127.0.0.1]:{relay.port} {local_sshd.host_pub}" in text
        # a port that is not one of this host's is not vouched for by the recorded key
        lone = local_sshd.settings(port=relay.port, known_hosts=tmp_path / "other")
        (tmp_path / "other").write_text(f"[127.0.0.1]:{_closed_port()} {local_sshd.host_pub}\n")
        with pytest.raises(ConnectionFailed, match="unknown host key"):
            SshTarget("h", lone).open()
    finally:
        relay.close()


def test_trusting_a_new_key_in_plan_mode_writes_nothing(local_sshd: LocalSshd,
                                                        tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    s = local_sshd.settings(known_hosts=known, trust_new_host_key=True, record_host_keys=False)
    with SshTarget("h", s) as t:
        assert t.run("true").ok
    assert not known.exists()


def test_a_command_runs_on_the_host_with_its_stdin(local_sshd: LocalSshd) -> None:
    from tasks.engine.command import Command

    payload = b"line one\n$(id) `id` 'q'\n\x00binary\xff"
    with local_sshd.target(USER_PW) as t:
        r = t.exec(Command(("sh", "-c", "id -u; md5sum"), stdin=payload))
    import hashlib
    assert r.stdout.split()[:2] == ["0", hashlib.md5(payload).hexdigest()]


def test_a_tunnel_reaches_a_port_only_the_host_listens_on(local_sshd: LocalSshd) -> None:
    """What kubectl does through the tunnel to 127.0.0.1:6443 on the server."""
    import http.server

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"gitVersion": "v1.33.3+k3s1"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        with local_sshd.target(USER_NOPW) as t, t.tunnel("127.0.0.1",
                                                          api.server_address[1]) as port:
            import urllib.request
            for _ in range(3):  # several connections through one tunnel
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/version",
                                            timeout=10) as reply:
                    assert reply.read() == b'{"gitVersion": "v1.33.3+k3s1"}'
    finally:
        api.shutdown()


def test_a_tunnel_to_nothing_is_one_clear_line(local_sshd: LocalSshd) -> None:
    closed = _closed_port()
    refused = rf"the SSH tunnel to 127.0.0.1:{closed} was refused .*is TCP forwarding allowed"
    with pytest.raises(ConnectionFailed, match=refused), local_sshd.target() as t, \
            t.tunnel("127.0.0.1", closed) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(5)
        assert s.recv(10) == b""  # the forward could not be opened: closed at once


def test_stdout_streams_as_bytes_and_bytes_upload_from_memory(local_sshd: LocalSshd,
                                                               tmp_path: Path) -> None:
    """What a backup and a restore ride on: a binary stdout handed over as it arrives
    (never kept), and data uploaded from memory, 0600, without a local file."""
    data = bytes(range(256)) * 4096  # 1 MiB, every byte value
    got = bytearray()
    remote = tmp_path / "upload.bin"
    with local_sshd.target() as t:
        r = t.run("head -c 1048576 /dev/zero | tr '\\0' x; echo done >&2",
                  stdout_to=got.extend)
        t.upload(data, str(remote))
    assert (r.rc, r.stdout, r.stderr.strip()) == (0, "", "done")
    assert bytes(got) == b"x" * 1048576
    assert remote.read_bytes() == data and oct(remote.stat().st_mode & 0o777) == "0o600"
    assert not Path(str(remote) + ".part").exists()
