"""The lab VM's qemu command line and the KVM/TCG choice (no VM is started)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tasks.engine.errors import UserError
from tasks.labvm import qemu


def config(tmp_path: Path, accel: str, port: int = 2222) -> qemu.QemuConfig:
    d = tmp_path / "lab1"
    return qemu.QemuConfig(
        name="lab1", disk=d / "disk.qcow2", kernel=tmp_path / "base/vmlinuz",
        initrd=tmp_path / "base/initrd.img", seed=d / "seed.tar", port=port, accel=accel,
        machine_id="0123456789abcdef0123456789abcdef", pidfile=d / "qemu.pid",
        console_log=d / "console.log", monitor=d / "monitor.sock")


def option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_tcg_argv(tmp_path: Path) -> None:
    argv = qemu.argv(config(tmp_path, "tcg"))
    assert argv[0] == "qemu-system-x86_64"
    assert option(argv, "-accel") == ["tcg,tb-size=256"]
    assert option(argv, "-cpu") == ["max"]
    assert option(argv, "-m") == ["1024"]
    assert option(argv, "-smp") == ["2"]
    assert "-daemonize" in argv
    assert option(argv, "-pidfile") == [str(tmp_path / "lab1/qemu.pid")]


def test_kvm_argv(tmp_path: Path) -> None:
    argv = qemu.argv(config(tmp_path, "kvm"))
    assert option(argv, "-accel") == ["kvm"]
    assert option(argv, "-cpu") == ["host"]
    assert not any("tcg" in a for a in argv)


def test_direct_kernel_boot_disk_net_seed_console(tmp_path: Path) -> None:
    argv = qemu.argv(config(tmp_path, "tcg", port=2345))
    assert option(argv, "-kernel") == [str(tmp_path / "base/vmlinuz")]
    assert option(argv, "-initrd") == [str(tmp_path / "base/initrd.img")]
    (append,) = option(argv, "-append")
    assert append.startswith("root=/dev/vda ")
    assert "console=ttyS0" in append
    assert "systemd.machine_id=0123456789abcdef0123456789abcdef" in append
    (drive,) = option(argv, "-drive")
    assert drive.startswith(f"file={tmp_path / 'lab1/disk.qcow2'},if=virtio,format=qcow2")
    (netdev,) = option(argv, "-netdev")
    assert netdev.startswith("user,")
    assert "hostfwd=tcp:127.0.0.1:2345-:22" in netdev
    assert "2222" not in netdev  # no second forward unless asked for
    (two,) = option(qemu.argv(replace(config(tmp_path, "tcg", 2345), alt_port=2346)),
                    "-netdev")
    assert two.endswith(",hostfwd=tcp:127.0.0.1:2345-:22,hostfwd=tcp:127.0.0.1:2346-:2222")
    assert "virtio-net-pci,netdev=net0,romfile=" in option(argv, "-device")
    assert option(argv, "-fw_cfg") == [f"name=opt/stack/seed.tar,file={tmp_path}/lab1/seed.tar"]
    assert option(argv, "-serial") == [f"file:{tmp_path}/lab1/console.log"]


def test_commas_in_paths_are_escaped(tmp_path: Path) -> None:
    cfg = config(tmp_path / "a,b", "tcg")
    (drive,) = option(qemu.argv(cfg), "-drive")
    assert "a,,b" in drive


def test_no_secret_in_argv(tmp_path: Path) -> None:
    """Secrets reach the guest in the seed file: argv only names the file."""
    argv = " ".join(qemu.argv(config(tmp_path, "tcg")))
    assert "password" not in argv.lower()


@pytest.mark.parametrize(("requested", "kvm", "expected"), [
    ("auto", True, "kvm"), ("auto", False, "tcg"), ("tcg", True, "tcg"), ("kvm", True, "kvm"),
    (None, False, "tcg"), ("TCG", True, "tcg"),
])
def test_choose_accel(requested: str | None, kvm: bool, expected: str,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(qemu.ACCEL_ENV, raising=False)
    assert qemu.choose_accel(requested, kvm=kvm) == expected


def test_choose_accel_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(qemu.ACCEL_ENV, "tcg")
    assert qemu.choose_accel(None, kvm=True) == "tcg"


def test_kvm_asked_but_unusable_is_one_clear_error() -> None:
    with pytest.raises(UserError, match="--accel tcg"):
        qemu.choose_accel("kvm", kvm=False)


def test_unknown_accel() -> None:
    with pytest.raises(UserError, match="auto, kvm, tcg"):
        qemu.choose_accel("xen", kvm=False)


def test_kvm_usable_needs_device_and_cpu_flag(tmp_path: Path) -> None:
    device = tmp_path / "kvm"
    device.write_text("")
    with_vmx = tmp_path / "cpuinfo-vmx"
    with_vmx.write_text("processor\t: 0\nflags\t\t: fpu vme vmx sse\n")
    without = tmp_path / "cpuinfo"
    without.write_text("processor\t: 0\nflags\t\t: fpu vme sse\n")
    assert qemu.kvm_usable(device, with_vmx)
    assert not qemu.kvm_usable(device, without)
    assert not qemu.kvm_usable(tmp_path / "missing", with_vmx)


def test_a_node_vm_gets_a_second_nic_on_the_nodes_network(tmp_path: Path) -> None:
    argv = qemu.argv(replace(config(tmp_path, "tcg", 2345), node_index=2))
    assert option(argv, "-netdev")[1] == "socket,id=net1,mcast=230.0.0.1:23456,localaddr=127.0.0.1"
    assert "virtio-net-pci,netdev=net1,mac=52:54:00:99:00:02,romfile=" in option(argv, "-device")
    assert len(option(qemu.argv(config(tmp_path, "tcg")), "-netdev")) == 1  # else just one


def test_the_node_network_file_gives_the_static_address() -> None:
    from tasks.labvm import seed

    assert seed.node_network(2) == ("[Match]\nMACAddress=52:54:00:99:00:02\n\n[Network]\n"
                                    "Address=10.99.0.2/24\n")
