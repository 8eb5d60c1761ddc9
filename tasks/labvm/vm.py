"""One lab VM: its saved state, its overlay disk, starting and stopping its qemu."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.labvm import qemu, tools
from tasks.labvm.paths import VmPaths


@dataclass
class VmState:
    """What ``vm.json`` records about a VM."""

    name: str
    port: int
    base: str  # hash of the base image the overlay sits on
    machine_id: str
    sudo_password: bool = False
    accel: str = ""
    created_at: float = 0.0
    started_at: float = 0.0
    boot_seconds: float = 0.0
    #: The local port forwarded to the guest's second SSH port (net.GUEST_ALT_SSH_PORT).
    alt_port: int = 0
    #: Its index on the nodes' network (net.node_address), 0 when not on it.
    node_index: int = 0
    #: Its K3s role in the lab inventory.
    role: str = "server"


def read_state(vm: VmPaths) -> VmState | None:
    try:
        data = json.loads(vm.state.read_text())
        return VmState(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_state(vm: VmPaths, state: VmState) -> None:
    tmp = vm.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    tmp.replace(vm.state)


def pid(vm: VmPaths) -> int | None:
    """The pid of this VM's qemu when it runs (checked against /proc), else None."""
    try:
        value = int(vm.pidfile.read_text().strip())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return value if str(vm.pidfile).encode() in cmdline else None


def running(vm: VmPaths) -> bool:
    return pid(vm) is not None


def create_disk(vm: VmPaths, base_disk: Path) -> None:
    """A qcow2 overlay on the base image (backing path relative, so .lab can move)."""
    backing = os.path.relpath(base_disk, vm.dir)
    vm.disk.unlink(missing_ok=True)
    tools.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing,
               vm.disk], what="qemu-img create (overlay)", cwd=vm.dir)


def start(vm: VmPaths, cfg: qemu.QemuConfig) -> int:
    """Start qemu daemonized; return its pid. Errors name the cause in one line."""
    binary = tools.require("qemu-system-x86_64")["qemu-system-x86_64"]
    vm.pidfile.unlink(missing_ok=True)
    vm.monitor.unlink(missing_ok=True)
    if len(str(vm.monitor)) > 100:
        raise UserError(f"lab folder path too long for a unix socket ({vm.monitor}): set"
                        " STACK_LAB_DIR to a shorter path")
    vm.console_log.write_text("")
    proc = subprocess.run(qemu.argv(cfg, binary), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False, timeout=120)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        tail = err[-1] if err else f"exit {proc.returncode}"
        if "hostfwd" in proc.stderr or "host forwarding" in proc.stderr:
            tail += f" (port {cfg.port} taken? pass --port)"
        raise UserError(f"{cfg.name}: qemu failed to start: {tail}")
    for _ in range(50):
        found = pid(vm)
        if found is not None:
            return found
        time.sleep(0.1)
    raise UserError(f"{cfg.name}: qemu started but wrote no pidfile; see {vm.console_log}")


def _powerdown(vm: VmPaths) -> bool:
    """Ask the guest to shut down (ACPI power button) through the qemu monitor."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(vm.monitor))
            s.sendall(b"system_powerdown\n")
            time.sleep(0.2)
        return True
    except OSError:
        return False


def _wait_gone(vm: VmPaths, value: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pid(vm) != value:
            return True
        time.sleep(0.2)
    return pid(vm) != value


def stop(vm: VmPaths, timeout: float = 45.0) -> str:
    """Stop the VM: clean poweroff, else SIGTERM, else SIGKILL. Returns how it ended."""
    value = pid(vm)
    if value is None:
        return "not running"
    if _powerdown(vm) and _wait_gone(vm, value, timeout):
        how = "powered off"
    else:
        how = "terminated"
        with contextlib.suppress(ProcessLookupError):
            os.kill(value, signal.SIGTERM)
        if not _wait_gone(vm, value, 10):
            how = "killed"
            with contextlib.suppress(ProcessLookupError):
                os.kill(value, signal.SIGKILL)
            _wait_gone(vm, value, 10)
    vm.pidfile.unlink(missing_ok=True)
    vm.monitor.unlink(missing_ok=True)
    return how
