"""The ``lab_vm`` fixture: a fresh lab VM for the session's end-to-end tests.

It runs ``lab.up --fresh`` for a VM named ``e2e`` (``$STACK_LAB_E2E_NAME``), building
the base image first when it is not cached, and removes the VM at the end of the session
(``STACK_LAB_KEEP=1`` keeps it for a look: ``inv lab.ssh --name e2e``). Tests get a
:class:`LabVm`: where its inventory and key are, its passwords, and ``run()`` to execute
a command over SSH as admin with the host key checked against the lab's known_hosts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from tasks.engine.errors import UserError
from tasks.labvm import lab, seed
from tasks.labvm.net import HOST

NAME_ENV, KEEP_ENV = "STACK_LAB_E2E_NAME", "STACK_LAB_KEEP"

#: The order the e2e modules share the one VM in: the lab's own checks while it is still
#: a fresh VPS (hardening turns password logins off...), harden, K3s on the hardened host,
#: then backup/restore (it installs, uninstalls and reinstalls K3s, so it comes last:
#: before test_harden it would leave the API port listening and K3s installed).
MODULE_ORDER = ("test_lab_boot", "test_harden", "test_k3s", "test_backup")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the e2e modules in :data:`MODULE_ORDER` (tests keep their order inside each)."""
    def rank(item: pytest.Item) -> int:
        if item.path.stem in MODULE_ORDER:
            return MODULE_ORDER.index(item.path.stem)
        return -1 if "e2e" not in item.path.parts else len(MODULE_ORDER)

    items.sort(key=rank)


@dataclass(frozen=True)
class Ran:
    """One command's outcome."""

    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class LabVm:
    """A running lab VM, as the e2e tests use it."""

    name: str
    port: int  # local port forwarded to the guest's sshd port 22
    alt_port: int  # local port forwarded to the guest's second SSH port (2222)
    inventory: Path  # .lab/<name>/inventory.yaml: an inventory with only this VM
    key: Path  # admin's private key
    known_hosts: Path  # .lab/known_hosts, the VM's host public keys
    password: str  # admin's password (SSH password logins are on, as on a fresh VPS)
    root_password: str
    machine_id: str  # the machine-id given to this VM
    base_machine_id: str  # the base image's machine-id (every VM must differ from it)
    dir: Path  # .lab/<name>/ (console.log is there)
    build_seconds: float | None  # None when the cached base image was used
    boot_seconds: float
    host: str = HOST
    user: str = "admin"

    def connect(self, *, user: str | None = None, password: str | None = None,
                timeout: float = 30.0) -> paramiko.SSHClient:
        """An SSH client, host key checked (unknown keys refused); key, or ``password``."""
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        auth: dict[str, object] = (
            {"password": password} if password is not None else
            {"key_filename": str(self.key)})
        client.connect(self.host, port=self.port, username=user or self.user,
                       look_for_keys=False, allow_agent=False, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout, **auth)  # type: ignore[arg-type]
        return client

    def run(self, command: str, *, timeout: float = 600.0, check: bool = True) -> Ran:
        """Run ``command`` (a shell command line) as admin; ``check``: fail on non-zero."""
        client = self.connect()
        try:
            _, out, err = client.exec_command(command, timeout=timeout)
            rc = out.channel.recv_exit_status()
            ran = Ran(rc, out.read().decode(errors="replace"), err.read().decode(
                errors="replace"))
        finally:
            client.close()
        if check and rc != 0:
            pytest.fail(f"{command!r} on {self.name}: exit {rc}: {ran.stderr.strip()[-500:]}")
        return ran


@pytest.fixture(scope="session")
def lab_vm() -> Iterator[LabVm]:
    """A fresh lab VM for the whole session (built/booted once), removed at the end."""
    name = os.environ.get(NAME_ENV, "e2e")
    t0 = time.monotonic()
    try:
        result = lab.up(name, fresh=True, say=lambda line: print(f"[lab] {line}"))
    except UserError as exc:
        pytest.fail(f"lab.up failed: {exc}", pytrace=False)
    v = result.paths
    vm = LabVm(
        name=name, port=result.port, alt_port=result.state.alt_port,
        inventory=v.dir / "inventory.yaml", key=v.key,
        known_hosts=result.inventory.parent / "known_hosts",
        password=seed.read_secret(v.password), root_password=seed.read_secret(v.root_password),
        machine_id=result.state.machine_id, base_machine_id=result.base.machine_id,
        dir=v.dir, build_seconds=result.build_seconds,
        boot_seconds=result.boot_seconds or 0.0)
    print(f"[lab] {name} up in {time.monotonic() - t0:.0f}s (build: {result.build_seconds},"
          f" boot to SSH: {result.boot_seconds:.0f}s)")
    try:
        yield vm
    finally:
        if os.environ.get(KEEP_ENV) != "1":
            lab.down(name, say=lambda line: print(f"[lab] {line}"))
