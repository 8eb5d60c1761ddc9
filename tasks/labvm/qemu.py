"""The qemu command line of a lab VM, and the choice between KVM and TCG.

KVM is used when ``/dev/kvm`` can be opened read-write and the CPU advertises hardware
virtualization (vmx/svm); otherwise qemu emulates (TCG) with a larger translation
cache. ``$STACK_LAB_ACCEL`` (auto, kvm, tcg) or ``--accel`` override the choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.labvm.net import GUEST_ALT_SSH_PORT, NODE_NET_MCAST, node_mac
from tasks.labvm.recipe import FW_CFG_SEED

ACCEL_ENV = "STACK_LAB_ACCEL"
ACCELS = ("auto", "kvm", "tcg")
MEMORY_MB = 1024
CPUS = 2
TCG = "tcg,tb-size=256"


def kvm_usable(device: Path = Path("/dev/kvm"), cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when KVM can run a normal guest here: usable /dev/kvm and vmx/svm flags.

    Some sandboxes expose a /dev/kvm that opens but cannot run an unmodified guest
    kernel; those show no vmx/svm flag, so the flag check keeps them on TCG.
    """
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and ({"vmx", "svm"} & set(line.split()))
               for line in flags.splitlines())


def choose_accel(requested: str | None = None, *, kvm: bool | None = None) -> str:
    """``kvm`` or ``tcg`` from ``requested`` (else ``$STACK_LAB_ACCEL``, else auto)."""
    wanted = (requested or os.environ.get(ACCEL_ENV) or "auto").lower()
    if wanted not in ACCELS:
        raise UserError(f"unknown accelerator {wanted!r}: use one of {', '.join(ACCELS)}"
                        f" (--accel or ${ACCEL_ENV})")
    usable = kvm_usable() if kvm is None else kvm
    if wanted == "kvm" and not usable:
        raise UserError("KVM was asked for but /dev/kvm is not usable here (no access, or"
                        " no vmx/svm CPU flag): use --accel tcg, or add yourself to the kvm"
                        " group")
    if wanted == "auto":
        return "kvm" if usable else "tcg"
    return wanted


@dataclass(frozen=True)
class QemuConfig:
    """Everything that varies between two lab VMs' qemu command lines."""

    name: str
    disk: Path
    kernel: Path
    initrd: Path
    seed: Path
    port: int
    accel: str
    machine_id: str
    pidfile: Path
    console_log: Path
    monitor: Path
    memory_mb: int = MEMORY_MB
    cpus: int = CPUS
    #: A second forward, to the guest's GUEST_ALT_SSH_PORT (0: none).
    alt_port: int = 0
    #: On the nodes' network as node n (0: not on it).
    node_index: int = 0


def kernel_cmdline(machine_id: str) -> str:
    """Root on the virtio disk, serial console, and the VM's machine-id from the start."""
    return f"root=/dev/vda rw console=ttyS0 systemd.machine_id={machine_id}"


def _opt(path: Path) -> str:
    """A path inside a qemu option value: commas are doubled."""
    return str(path).replace(",", ",,")


def argv(cfg: QemuConfig, binary: str = "qemu-system-x86_64") -> list[str]:
    """The full qemu argv: daemonized, pidfile, serial console to a file, monitor socket."""
    accel = ["-accel", "kvm", "-cpu", "host"] if cfg.accel == "kvm" else [
        "-accel", TCG, "-cpu", "max"]
    return [
        binary, "-name", f"stack-lab-{cfg.name}", "-machine", "q35", *accel,
        "-m", str(cfg.memory_mb), "-smp", str(cfg.cpus),
        "-nodefaults", "-display", "none", "-no-user-config",
        "-kernel", str(cfg.kernel), "-initrd", str(cfg.initrd),
        "-append", kernel_cmdline(cfg.machine_id),
        "-drive", f"file={_opt(cfg.disk)},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
        "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{cfg.port}-:22" + (
            f",hostfwd=tcp:127.0.0.1:{cfg.alt_port}-:{GUEST_ALT_SSH_PORT}"
            if cfg.alt_port else ""),
        "-device", "virtio-net-pci,netdev=net0,romfile=",  # no iPXE ROM: direct kernel boot
        *(["-netdev", f"socket,id=net1,mcast={NODE_NET_MCAST},localaddr=127.0.0.1",
           "-device", f"virtio-net-pci,netdev=net1,mac={node_mac(cfg.node_index)},romfile="]
          if cfg.node_index else []),
        "-device", "virtio-rng-pci",
        "-fw_cfg", f"name={FW_CFG_SEED},file={_opt(cfg.seed)}",
        "-serial", f"file:{_opt(cfg.console_log)}",
        "-monitor", f"unix:{_opt(cfg.monitor)},server=on,wait=off",
        "-pidfile", str(cfg.pidfile), "-daemonize",
    ]
