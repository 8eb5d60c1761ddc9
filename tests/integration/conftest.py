"""A real sshd on 127.0.0.1 for engine tests: root login plus two sudo users.

Needs root and openssh-server + sudo (CI installs them). The users are created for the
test session and removed after it. Nothing is mocked: paramiko talks to sshd, sudo
checks real passwords.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.engine.target import SshSettings, SshTarget

SSHD = Path("/usr/sbin/sshd")
# Per test process, so that two test runs on one machine never share (or delete) users.
USER_PW = f"stk{os.getpid()}-pw"       # sudo asks for the password
USER_NOPW = f"stk{os.getpid()}-nopw"   # NOPASSWD sudo
# sudo asks a password for everything but sh: `sudo -n true` fails, `sudo sh` does not ask
USER_SH = f"stk{os.getpid()}-sh"


@dataclass
class LocalSshd:
    port: int
    dir: Path
    key: Path
    other_key: Path
    known_hosts: Path
    host_pub: str
    password: str

    def settings(self, user: str = "root", **kw: object) -> SshSettings:
        base: dict[str, object] = dict(address="127.0.0.1", port=self.port, user=user,
                                       key_file=self.key, known_hosts=self.known_hosts,
                                       connect_timeout=5.0)
        base.update(kw)
        return SshSettings(**base)  # type: ignore[arg-type]

    def target(self, user: str = "root", **kw: object) -> SshTarget:
        return SshTarget("local-sshd", self.settings(user, **kw),
                         sudo_password=lambda _h: self.password)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


@pytest.fixture(scope="session")
def local_sshd() -> Iterator[LocalSshd]:
    if os.geteuid() != 0 or not SSHD.exists() or not shutil.which("sudo"):
        pytest.skip("needs root, openssh-server and sudo (apt-get install openssh-server sudo)")
    # Not under pytest's tmp dir (mode 0700): the test users must read authorized_keys.
    d = Path(tempfile.mkdtemp(prefix="stack-sshd-"))
    d.chmod(0o755)
    for name in ("host", "client", "other"):
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name))
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    (d / "authorized_keys").chmod(0o644)
    password = secrets.token_urlsafe(12)
    rules = {USER_PW: ["ALL=(ALL) ALL"], USER_NOPW: ["ALL=(ALL) NOPASSWD: ALL"],
             USER_SH: ["ALL=(ALL) ALL", "ALL=(ALL) NOPASSWD: /bin/sh, /usr/bin/sh"]}
    for user, lines in rules.items():
        subprocess.run(["userdel", "-r", user], capture_output=True, check=False)
        _run("useradd", "-m", "-s", "/bin/sh", user)
        _run("chpasswd", stdin=f"{user}:{password}\n")
        sudoers = Path(f"/etc/sudoers.d/{user}")
        sudoers.write_text("".join(f"{user} {rule}\n" for rule in lines))
        sudoers.chmod(0o440)
    port = _free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host'}",
        f"PidFile {d / 'sshd.pid'}", f"AuthorizedKeysFile {d / 'authorized_keys'}",
        "StrictModes no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "MaxStartups 50",
        "Subsystem sftp internal-sftp", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                            stderr=open(d / "sshd.log", "w"))  # noqa: SIM115
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    host_pub = (d / "host.pub").read_text().split()
    known = d / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    try:
        yield LocalSshd(port, d, d / "client", d / "other", known, " ".join(host_pub[:2]),
                        password)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for user in rules:
            subprocess.run(["userdel", "-r", user], capture_output=True, check=False)
            Path(f"/etc/sudoers.d/{user}").unlink(missing_ok=True)
        shutil.rmtree(d, ignore_errors=True)
