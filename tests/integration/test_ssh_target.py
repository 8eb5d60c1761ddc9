"""The SSH target against a real sshd: running, facts, sudo, host keys, errors."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tasks.engine.errors import ConnectionFailed, UserError
from tasks.engine.facts import Fact, file_fact, lines
from tasks.engine.shell import write_file
from tasks.engine.target import SshTarget, gather
from tests.integration.conftest import USER_NOPW, USER_PW, LocalSshd


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
