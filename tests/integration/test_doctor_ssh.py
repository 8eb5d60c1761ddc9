"""doctor's SSH checks against a real sshd: port, host key, login, sudo; and a whole run.

Nothing may be written: known_hosts stays as it was (or absent) whatever the host offers.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tasks.doctor import ssh
from tasks.doctor.findings import Finding, Status, exit_code, screen
from tasks.doctor.run import run
from tasks.engine import target as target_module
from tests.integration.conftest import USER_NOPW, USER_PW, LocalSshd
from tests.unit.doctor_case import CANARY, make_case, needs_installed_tools
from tests.unit.local_http import closed_port

SCAN = ("compare with the provider's console, then record it: inv host.harden --check"
        " --trust-new-host-key")


def fingerprint(pub: Path) -> str:
    """``ssh-ed25519 SHA256:...`` of a public key file, as ssh-keygen computes it."""
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True,
                         text=True).stdout.split()
    return f"ssh-ed25519 {out[1]}"


@pytest.fixture(autouse=True)
def no_sudo_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACK_SUDO_PASSWORD", raising=False)
    monkeypatch.setattr(target_module, "_env_sudo_password", None)


def test_the_ssh_port_first_choice_then_fallback(local_sshd: LocalSshd) -> None:
    port, closed = local_sshd.port, closed_port()
    assert ssh.check_port("vps1", "127.0.0.1", (port, closed), 2.0) == (
        Finding("vps1 ssh port", Status.OK, f"127.0.0.1:{port} accepts TCP"), port)
    assert ssh.check_port("vps1", "127.0.0.1", (closed, port), 2.0) == (
        Finding("vps1 ssh port", Status.WARN, f"127.0.0.1:{port} accepts TCP, not {closed}"
                f" ({closed}: connection refused); the tasks will use {port}",
                "set hosts[].port to the port sshd listens on"), port)
    assert ssh.check_port("vps1", "127.0.0.1", (closed,), 2.0) == (
        Finding("vps1 ssh port", Status.FAIL, f"127.0.0.1: no SSH port answers ({closed}:"
                " connection refused)", "check hosts[].address and hosts[].port, that the"
                " host is up, and the provider's firewall"), None)


def test_the_host_key_matches_known_hosts(local_sshd: LocalSshd) -> None:
    fp = fingerprint(local_sshd.dir / "host.pub")
    before = local_sshd.known_hosts.read_bytes()
    got = ssh.check_host_key("vps1", "127.0.0.1", local_sshd.port, (local_sshd.port,),
                             local_sshd.known_hosts, 2.0)
    assert got == Finding("vps1 host key", Status.OK, f"{fp} matches {local_sshd.known_hosts}")
    assert local_sshd.known_hosts.read_bytes() == before


def test_an_unknown_host_key_fails_and_is_not_recorded(local_sshd: LocalSshd,
                                                       tmp_path: Path) -> None:
    known, port = tmp_path / "known_hosts", local_sshd.port
    got = ssh.check_host_key("vps1", "127.0.0.1", port, (port,), known, 2.0)
    assert got == Finding(
        "vps1 host key", Status.FAIL, f"unknown host key"
        f" {fingerprint(local_sshd.dir / 'host.pub')}: not in {known}",
        f"ssh-keyscan -p {port} 127.0.0.1 | ssh-keygen -lf -, {SCAN}")
    assert not known.exists()


def test_a_changed_host_key_fails_loudly(local_sshd: LocalSshd, tmp_path: Path) -> None:
    known, port = tmp_path / "known_hosts", local_sshd.port
    other = (local_sshd.dir / "other.pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{port} {other[0]} {other[1]}\n")
    before = known.read_bytes()
    got = ssh.check_host_key("vps1", "127.0.0.1", port, (port,), known, 2.0)
    assert got == Finding(
        "vps1 host key", Status.FAIL, f"HOST KEY MISMATCH: {known} has"
        f" {fingerprint(local_sshd.dir / 'other.pub')} for [127.0.0.1]:{port}, the host"
        f" offers {fingerprint(local_sshd.dir / 'host.pub')}",
        "do not connect; if the host was rebuilt, compare with the provider's console,"
        f" remove its line from {known} and record the new key")
    assert known.read_bytes() == before


def test_a_key_recorded_for_another_port_of_the_host(local_sshd: LocalSshd,
                                                     tmp_path: Path) -> None:
    known, port = tmp_path / "known_hosts", local_sshd.port
    host = (local_sshd.dir / "host.pub").read_text().split()
    known.write_text(f"127.0.0.1 {host[0]} {host[1]}\n")  # port 22's entry
    got = ssh.check_host_key("vps1", "127.0.0.1", port, (port, 22), known, 2.0)
    assert got == Finding("vps1 host key", Status.OK,
                          f"{fingerprint(local_sshd.dir / 'host.pub')} matches {known}"
                          " (recorded for port 22: the same server)")
    assert known.read_text() == f"127.0.0.1 {host[0]} {host[1]}\n"


def test_login_and_passwordless_sudo(local_sshd: LocalSshd) -> None:
    got = ssh.check_access("vps1", local_sshd.settings(USER_NOPW))
    assert (got.login, got.sudo) == (
        Finding("vps1 login", Status.OK, f"{USER_NOPW}@127.0.0.1:{local_sshd.port} with key"
                f" {local_sshd.key}"),
        Finding("vps1 sudo", Status.OK, "root through sudo (passwordless)"))
    assert got.k3s_running is not True  # no K3s on this machine


def test_a_login_with_another_key_fails_and_skips_sudo(local_sshd: LocalSshd) -> None:
    got = ssh.check_access("vps1", local_sshd.settings(USER_NOPW, key_file=local_sshd.other_key))
    where = f"vps1 ({USER_NOPW}@127.0.0.1:{local_sshd.port})"
    assert (got.login, got.sudo) == (
        Finding("vps1 login", Status.FAIL, f"{where}: authentication failed with key"
                f" {local_sshd.other_key}: check hosts[].user and hosts[].key_file, and that"
                " the public key is in the user's ~/.ssh/authorized_keys",
                f"add {local_sshd.other_key}.pub to the ~/.ssh/authorized_keys of {USER_NOPW}"
                f" on the host (ssh-copy-id -i {local_sshd.other_key}.pub -p {local_sshd.port}"
                f" {USER_NOPW}@127.0.0.1 where a login works), or fix hosts[].user /"
                " hosts[].key_file"),
        Finding("vps1 sudo", Status.SKIPPED, "login failed"))


SUDO_FIX = (f"give the user sudo (usermod -aG sudo {USER_PW}) and set STACK_SUDO_PASSWORD, or"
            " allow it passwordless sudo")


def test_sudo_with_a_password_never_prompts(local_sshd: LocalSshd,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    got = ssh.check_access("vps1", local_sshd.settings(USER_PW))
    assert got.sudo == Finding("vps1 sudo", Status.FAIL, "vps1: sudo needs a password: set"
                               " STACK_SUDO_PASSWORD (doctor never prompts), or allow"
                               " passwordless sudo for this user", SUDO_FIX)
    monkeypatch.setattr(target_module, "_env_sudo_password", "wrong-password")
    got = ssh.check_access("vps1", local_sshd.settings(USER_PW))
    assert got.sudo == Finding("vps1 sudo", Status.FAIL, "vps1: sudo refused the password"
                               f" for user {USER_PW} (or the user may not use sudo)", SUDO_FIX)
    monkeypatch.setenv("STACK_SUDO_PASSWORD", local_sshd.password)
    monkeypatch.setattr(target_module, "_env_sudo_password", None)
    got = ssh.check_access("vps1", local_sshd.settings(USER_PW))
    assert got.sudo == Finding("vps1 sudo", Status.OK,
                               "root through sudo (with $STACK_SUDO_PASSWORD on stdin)")
    assert got.login.status is Status.OK


def snapshot(top: Path, *more: Path) -> dict[str, str]:
    """sha256 of every file under ``top`` and of the files ``more``."""
    paths = [*(p for p in sorted(top.rglob("*")) if p.is_file()), *more]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_a_whole_healthy_run_changes_nothing(local_sshd: LocalSshd, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    needs_installed_tools()
    case = make_case(tmp_path, monkeypatch)
    case.write_inventory(port=local_sshd.port, user=USER_NOPW, key_file=str(local_sshd.key),
                         extra=f"host: {{ssh: {{known_hosts: {local_sshd.known_hosts}}}}}\n")
    web = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    try:
        env = case.env(web_ports=tuple(s.getsockname()[1] for s in web),
                       resolve=lambda name: ["127.0.0.1"])
        before = snapshot(case.dir, local_sshd.known_hosts)
        found = run(case.inventory, env=env)
    finally:
        for s in web:
            s.close()
    assert snapshot(case.dir, local_sshd.known_hosts) == before
    assert [(f.check, f.status) for f in found] == [
        ("python", Status.OK), ("tool helm", Status.OK), ("tool kubectl", Status.OK),
        ("tool sops", Status.OK), ("tool age", Status.OK), ("inventory", Status.OK),
        ("vps1 ssh port", Status.OK), ("vps1 host key", Status.OK), ("vps1 login", Status.OK),
        ("vps1 sudo", Status.OK), ("vps1 ports 80/443", Status.OK),
        ("dns api.example.test", Status.WARN),  # a lab: the host is 127.0.0.1
        ("age key", Status.OK), ("secrets", Status.OK), ("charts", Status.OK)]
    assert exit_code(found) == 0
    assert CANARY not in "\n".join(screen(found))


def test_a_missing_key_file_skips_only_login_and_sudo(local_sshd: LocalSshd, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_case(tmp_path, monkeypatch)
    case.write_inventory(port=local_sshd.port, user=USER_NOPW, key_file="missing",
                         extra=f"host: {{ssh: {{known_hosts: {local_sshd.known_hosts}}}}}\n")
    found = {f.check: f for f in run(case.inventory, env=case.env(resolve=lambda n: []))}
    assert found["inventory"] == Finding(
        "inventory", Status.FAIL, f"inventory.yaml: hosts[0].key_file: file not found:"
        f" {tmp_path}/missing (create one with ssh-keygen -t ed25519, or fix the path)",
        "edit inventory.yaml (inventory.schema.json documents every key), then inv"
        " inventory.check")
    assert found["vps1 host key"].status is Status.OK
    why = "the inventory's key file or known_hosts is not usable (see above)"
    assert (found["vps1 login"], found["vps1 sudo"]) == (
        Finding("vps1 login", Status.SKIPPED, why), Finding("vps1 sudo", Status.SKIPPED, why))
    assert found["secrets"].status is Status.OK  # the rest still ran


@contextmanager
def slow_sshd(upstream: int, delay: float) -> Iterator[int]:
    """A port in front of the real sshd that holds each connection ``delay`` seconds
    before sshd sees it: the banner comes that late, as from a host under heavy load
    (TCP is accepted at once, as the kernel of a loaded host still does)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def handle(client: socket.socket) -> None:
        if stop.wait(delay):
            client.close()
            return
        with client, socket.create_connection(("127.0.0.1", upstream)) as up:
            back = threading.Thread(target=pump, args=(up, client), daemon=True)
            back.start()
            pump(client, up)
            back.join(10)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = server.accept()
                threading.Thread(target=handle, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()


def test_a_slow_sshd_gets_the_inventorys_connect_timeout(local_sshd: LocalSshd,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """sshd answers 1.5 s late, past doctor's 0.5 s cap on the TCP probe but within
    host.ssh.connect_timeout (4 s): the probe, the host key and the login all pass."""
    case = make_case(tmp_path, monkeypatch)
    with slow_sshd(local_sshd.port, 1.5) as port:
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {local_sshd.host_pub}\n")
        case.write_inventory(port=port, user=USER_NOPW, key_file=str(local_sshd.key),
                             extra=f"host: {{ssh: {{known_hosts: {known},"
                                   " connect_timeout: 4}}\n")
        found = {f.check: f for f in run(case.inventory, "vps1",
                                         env=case.env(ssh_timeout=0.5,
                                                      resolve=lambda n: []))}
    assert [(c, found[c].status) for c in ("vps1 ssh port", "vps1 host key", "vps1 login",
                                           "vps1 sudo")] == [
        ("vps1 ssh port", Status.OK), ("vps1 host key", Status.OK),
        ("vps1 login", Status.OK), ("vps1 sudo", Status.OK)], found


def test_a_handshake_later_than_the_timeout_fails_in_time(local_sshd: LocalSshd) -> None:
    """sshd would answer after 3 s (its key then "unknown" for this port, another
    message): a 1 s timeout ends the wait first, and the finding says so."""
    with slow_sshd(local_sshd.port, 3.0) as port:
        got = ssh.check_host_key("vps1", "127.0.0.1", port, (port,), local_sshd.known_hosts,
                                 1.0)
    assert got.status is Status.FAIL and got.check == "vps1 host key"
    assert got.detail.startswith(f"127.0.0.1:{port}: no SSH handshake ("), got
