"""The operations behind ``inv lab.up``, ``lab.down`` and ``lab.ssh``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from tasks.engine.errors import UserError
from tasks.labvm import image, inventory_file, net, qemu, seed, tools, vm
from tasks.labvm.paths import DEFAULT_NAME, LabPaths, VmPaths

Say = Callable[[str], None]
BOOT_TIMEOUT = 600.0


@dataclass(frozen=True)
class UpResult:
    """A running lab VM and what it took to get there."""

    name: str
    port: int
    paths: VmPaths
    inventory: Path
    state: vm.VmState
    base: image.BaseImage
    build_seconds: float | None  # None: the cached base image was used
    boot_seconds: float | None  # None: the VM was already running
    already_running: bool


def up(name: str = DEFAULT_NAME, *, port: int | None = None, fresh: bool = False,
       sudo_password: bool = False, accel: str | None = None, node_index: int = 0,
       role: str = "server",
       timeout: float = BOOT_TIMEOUT, say: Say = print,
       paths: LabPaths | None = None) -> UpResult:
    """Make sure VM ``name`` runs and answers SSH; write the inventory and known_hosts."""
    paths = paths or LabPaths.default()
    v = paths.vm(name)
    tools.require("qemu-system-x86_64", "qemu-img", "ssh-keygen", "openssl")
    state = vm.read_state(v)
    if state is not None and sudo_password and not state.sudo_password and not fresh:
        raise UserError(f"{name} was created with passwordless sudo: add --fresh to recreate"
                        " it with --sudo-password")
    if state is not None and vm.running(v) and not fresh:
        return _already_running(paths, v, state, port=port, timeout=timeout, say=say)
    if fresh and v.dir.exists():
        how = vm.stop(v)
        shutil.rmtree(v.dir)
        state = None
        say(f"{name}: removed the old VM ({how}); creating it afresh")
    t0 = time.monotonic()
    base, built = image.ensure(paths, say)
    build_seconds = time.monotonic() - t0 if built else None
    prune_bases(paths, keep=base.hash)
    if state is not None and not v.disk.is_file():
        state = None
    if state is not None and state.base != base.hash:
        old = image.load(paths.base(state.base))
        if old is None:
            say(f"{name}: its base image {state.base} is gone; recreating the VM")
            state = None
        else:
            say(f"{name}: keeps its older base image {state.base} (--fresh moves it to"
                f" {base.hash})")
            base = old
    if state is None:
        state = create(v, base, sudo_password=sudo_password, port=port or net.DEFAULT_PORT,
                       node_index=node_index, role=role,
                       say=say)
    state.port = choose_port(paths, name, port or state.port, say)
    state.alt_port = choose_alt_port(paths, name, state)
    state.accel = qemu.choose_accel(accel)
    boot_seconds = boot(v, state, base, timeout=timeout, say=say)
    inventory = write_inventories(paths)
    return UpResult(name, state.port, v, inventory, state, base, build_seconds, boot_seconds,
                    False)


def _already_running(paths: LabPaths, v: VmPaths, state: vm.VmState, *, port: int | None,
                     timeout: float, say: Say) -> UpResult:
    """Leave a running VM alone: report it, make sure SSH answers, rewrite the files."""
    base = image.load(paths.base(state.base))
    if base is None:
        raise UserError(f"{v.name} runs on base image {state.base}, which is gone: run"
                        f" inv lab.up --name {v.name} --fresh")
    say(f"{v.name} is already running on {net.HOST}:{state.port} (pid {vm.pid(v)});"
        " left alone (--fresh recreates it)")
    if port is not None and port != state.port:
        say(f"{v.name}: --port {port} ignored: the VM keeps port {state.port} until"
            " lab.down")
    if not net.read_banner(state.port).startswith(b"SSH-"):
        wait_ssh(v, state.port, timeout)
    write_inventories(paths)
    return UpResult(v.name, state.port, v, paths.inventory, state, base, None, None, True)


def create(v: VmPaths, base: image.BaseImage, *, sudo_password: bool, port: int,
           node_index: int = 0, role: str = "server",
           say: Say) -> vm.VmState:
    """A new VM: fresh identity and secrets, overlay disk on ``base``."""
    if v.dir.exists():
        shutil.rmtree(v.dir)
    identity = seed.create(v, sudo_password=sudo_password, node_index=node_index)
    vm.create_disk(v, base.disk)
    state = vm.VmState(name=v.name, port=port, base=base.hash,
                       machine_id=identity.machine_id, sudo_password=sudo_password,
                       node_index=node_index, role=role,
                       created_at=time.time())
    vm.write_state(v, state)
    sudo = "sudo asks admin's password" if sudo_password else "passwordless sudo"
    say(f"{v.name}: new VM on base {base.hash}: fresh host keys and machine-id, user admin"
        f" ({sudo})")
    return state


def choose_port(paths: LabPaths, name: str, wanted: int, say: Say) -> int:
    """``wanted`` when free, else a free port (said aloud)."""
    taken = {s.port for other in paths.vm_names() if other != name
             if (s := vm.read_state(paths.vm(other))) is not None}
    try:
        port = net.pick_port(wanted, taken)
    except OSError as exc:
        raise UserError(f"cannot find a free port on {net.HOST}: {exc}") from None
    if port != wanted:
        say(f"port {wanted} is busy: using {port} instead")
    return port


def choose_alt_port(paths: LabPaths, name: str, state: vm.VmState) -> int:
    """A free local port for the guest's second SSH port (the previous one when free)."""
    taken = {state.port} | {p for other in paths.vm_names() if other != name
                            if (s := vm.read_state(paths.vm(other))) is not None
                            for p in (s.port, s.alt_port)}
    try:
        return net.pick_port(state.alt_port or state.port + 1, taken)
    except OSError as exc:
        raise UserError(f"cannot find a free port on {net.HOST}: {exc}") from None


def boot(v: VmPaths, state: vm.VmState, base: image.BaseImage, *, timeout: float,
         say: Say) -> float:
    """Start qemu for ``v`` and wait for the SSH banner; return the seconds it took."""
    cfg = qemu.QemuConfig(
        name=v.name, disk=v.disk, kernel=base.kernel, initrd=base.initrd, seed=v.seed,
        port=state.port, alt_port=state.alt_port, node_index=state.node_index,
        accel=state.accel,
        machine_id=state.machine_id,
        pidfile=v.pidfile, console_log=v.console_log, monitor=v.monitor)
    accel = "KVM" if state.accel == "kvm" else "TCG (no KVM: slower)"
    say(f"{v.name}: booting ({accel}, {cfg.memory_mb} MiB, {cfg.cpus} CPUs), SSH on"
        f" {net.HOST}:{state.port}; console: {v.console_log}")
    t0 = time.monotonic()
    state.started_at = 0.0  # set once SSH answers
    vm.start(v, cfg)
    vm.write_state(v, state)
    banner = wait_ssh(v, state.port, timeout)
    seconds = time.monotonic() - t0
    check_identity(v, state.port)
    state.started_at, state.boot_seconds = time.time(), round(seconds, 1)
    vm.write_state(v, state)
    say(f"{v.name}: SSH is up after {seconds:.0f}s ({banner})")
    return seconds


def wait_ssh(v: VmPaths, port: int, timeout: float) -> str:
    """Wait for the VM's SSH banner; raise pointing at console.log when it does not come."""
    banner = net.wait_for_ssh(port, timeout, alive=lambda: vm.running(v))
    if banner is None:
        if not vm.running(v):
            raise UserError(f"{v.name}: the VM stopped while booting: see {v.console_log}")
        raise UserError(f"{v.name}: no SSH banner on {net.HOST}:{port} after"
                        f" {timeout:.0f}s: see {v.console_log} (the VM is left running;"
                        f" inv lab.down --name {v.name} stops it)")
    return banner


def check_identity(v: VmPaths, port: int) -> None:
    """The VM must offer its own Ed25519 host key: proof its first-boot seed was applied."""
    mine = [k.split()[1] for k in v.host_keys_pub.read_text().splitlines()
            if k.startswith("ssh-ed25519 ")]
    try:
        offered = net.server_host_key(port, "ssh-ed25519")
    except (OSError, paramiko.SSHException) as exc:
        raise UserError(f"{v.name}: cannot read the SSH host key on {net.HOST}:{port}: {exc}"
                        ) from None
    if offered not in mine:
        raise UserError(f"{v.name}: the VM offers a host key that is not its own (its"
                        f" first-boot seed failed?): see {v.console_log}")


def write_inventories(paths: LabPaths) -> Path:
    """Rewrite the inventories and known_hosts from the VMs' saved state."""
    hosts = []
    for name in paths.vm_names():
        v = paths.vm(name)
        state = vm.read_state(v)
        if state is None or not v.host_keys_pub.is_file():
            continue
        keys = [k for k in v.host_keys_pub.read_text().splitlines() if k.strip()]
        hosts.append(inventory_file.LabHost(name, state.port, keys, state.alt_port,
                                            state.node_index, state.role))
    inventory_file.write(paths.root, hosts)
    return paths.inventory


def prune_bases(paths: LabPaths, keep: str) -> None:
    """Remove base images of older recipes that no VM uses any more."""
    used = {keep} | {s.base for n in paths.vm_names()
                     if (s := vm.read_state(paths.vm(n))) is not None}
    for d in paths.base_root.iterdir() if paths.base_root.is_dir() else []:
        if d.is_dir() and not d.name.startswith(".") and d.name not in used:
            shutil.rmtree(d, ignore_errors=True)
            (paths.base_root / f"build-{d.name}.log").unlink(missing_ok=True)


def down(name: str = DEFAULT_NAME, *, purge: bool = False, say: Say = print,
         paths: LabPaths | None = None) -> None:
    """Stop VM ``name`` and remove it (overlay, keys, secrets); ``purge``: the base too."""
    paths = paths or LabPaths.default()
    v = paths.vm(name)
    if v.dir.exists():
        how = vm.stop(v)
        shutil.rmtree(v.dir)
        say(f"{name}: {how}; removed its disk and secrets")
    else:
        say(f"{name}: no such lab VM (nothing to stop)")
    write_inventories(paths)
    if purge:
        others = paths.vm_names()
        if others:
            raise UserError(f"not removing the base image: other lab VMs use it"
                            f" ({', '.join(others)}); inv lab.down --name NAME them first")
        if paths.base_root.exists():
            shutil.rmtree(paths.base_root)
            say(f"removed the cached base image(s) in {paths.base_root}")


def ssh_argv(name: str = DEFAULT_NAME, extra: list[str] | None = None,
             paths: LabPaths | None = None) -> list[str]:
    """The ``ssh`` command that logs in to VM ``name`` as admin, host key checked."""
    paths = paths or LabPaths.default()
    v = paths.vm(name)
    state = vm.read_state(v)
    if state is None:
        raise UserError(f"no lab VM named {name!r}: start it with inv lab.up --name {name}")
    if not vm.running(v):
        raise UserError(f"lab VM {name} is not running: start it with inv lab.up --name"
                        f" {name}")
    ssh = tools.require("ssh")["ssh"]
    return [ssh, "-i", str(v.key), "-p", str(state.port),
            "-o", f"UserKnownHostsFile={paths.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", "GlobalKnownHostsFile=/dev/null",
            f"{inventory_file.USER}@{net.HOST}", *(extra or [])]


def next_steps(result: UpResult) -> list[str]:
    """The commands to run next, exactly: with the lab inventory when this VM is its only
    host, else with the VM's own inventory (``.lab/<name>/inventory.yaml``)."""
    alone = LabPaths(result.inventory.parent).vm_names() == [result.name]
    inv = inventory_file.shown(result.inventory if alone else
                               result.paths.dir / "inventory.yaml")
    name = "" if result.name == DEFAULT_NAME else f" --name {result.name}"
    return [
        f"inv inventory.check -i {inv}",
        f"inv host.harden -i {inv}",
        f"inv lab.ssh{name}",
        f"inv lab.down{name}",
    ]
