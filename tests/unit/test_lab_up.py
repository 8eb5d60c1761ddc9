"""lab.up's decisions (create, reuse a running VM, --fresh, ports) with qemu faked out."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tasks.engine.errors import UserError
from tasks.labvm import image, lab, net, qemu, seed, tools, vm
from tasks.labvm.paths import LabPaths, VmPaths
from tasks.model import load


class FakeQemu:
    """Stands in for qemu: 'running' VMs are a set of names."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.starts: list[qemu.QemuConfig] = []

    def start(self, v: VmPaths, cfg: qemu.QemuConfig) -> int:
        self.starts.append(cfg)
        self.running.add(v.name)
        return 4242

    def stop(self, v: VmPaths, timeout: float = 45.0) -> str:
        if v.name not in self.running:
            return "not running"
        self.running.discard(v.name)
        return "powered off"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeQemu:
    fq = FakeQemu()
    base_dir = tmp_path / ".lab" / "base" / "cafe0000cafe0000"
    base_dir.mkdir(parents=True)
    for f in ("rootfs.qcow2", "vmlinuz", "initrd.img"):
        (base_dir / f).write_text("")
    (base_dir / "build.json").write_text(json.dumps({"machine_id": "b" * 32, "built_at": 0}))
    base = image.load(base_dir)
    assert base is not None
    monkeypatch.setattr(seed, "HOST_KEY_TYPES", (("ed25519", []),))
    monkeypatch.setattr(tools, "require", lambda *p: {x: x for x in p})
    monkeypatch.setattr(image, "ensure", lambda paths, say, recipe=None: (base, False))
    monkeypatch.setattr(vm, "create_disk", lambda v, disk: v.disk.write_text(""))
    monkeypatch.setattr(vm, "start", fq.start)
    monkeypatch.setattr(vm, "stop", fq.stop)
    monkeypatch.setattr(vm, "running", lambda v: v.name in fq.running)
    monkeypatch.setattr(vm, "pid", lambda v: 4242 if v.name in fq.running else None)
    monkeypatch.setattr(net, "wait_for_ssh", lambda *a, **k: "SSH-2.0-OpenSSH_9.2p1")
    monkeypatch.setattr(net, "read_banner", lambda *a, **k: b"SSH-2.0-OpenSSH_9.2p1")
    monkeypatch.setattr(lab, "check_identity", lambda v, port: None)
    monkeypatch.setattr(qemu, "kvm_usable", lambda: False)
    monkeypatch.delenv(qemu.ACCEL_ENV, raising=False)
    return fq


def up(tmp_path: Path, said: list[str], **kw: object) -> lab.UpResult:
    return lab.up(paths=LabPaths(tmp_path / ".lab"), say=said.append, **kw)  # type: ignore[arg-type]



def test_first_up_creates_boots_and_writes_a_valid_inventory(tmp_path: Path,
                                                             fake: FakeQemu) -> None:
    said: list[str] = []
    port = net.free_port()
    r = up(tmp_path, said, port=port)
    assert not r.already_running and r.port == port and r.build_seconds is None
    (cfg,) = fake.starts
    assert cfg.accel == "tcg" and cfg.port == port and cfg.machine_id == r.state.machine_id
    loaded = load(r.inventory)
    host = loaded.data.hosts[0]
    assert cfg.alt_port not in (0, port)
    # sshd on the guest's 22 is reached on `port`, on its second SSH port on alt_port
    assert (host.connect_port(22), host.connect_port(2222)) == (port, cfg.alt_port)
    assert host.connect_ports(22) == (port, cfg.alt_port)
    assert loaded.key_file(loaded.data.hosts[0]) == r.paths.key
    assert any("new VM" in s for s in said)


def test_up_again_leaves_a_running_vm_alone(tmp_path: Path, fake: FakeQemu) -> None:
    said: list[str] = []
    first = up(tmp_path, said, port=net.free_port())
    again = up(tmp_path, said, port=1)
    assert again.already_running and again.boot_seconds is None
    assert again.state.machine_id == first.state.machine_id
    assert len(fake.starts) == 1
    assert any("already running" in s for s in said)
    assert any("--port 1 ignored" in s for s in said)


def test_fresh_recreates_with_a_new_identity(tmp_path: Path, fake: FakeQemu) -> None:
    said: list[str] = []
    first = up(tmp_path, said, port=net.free_port())
    password = seed.read_secret(first.paths.password)
    again = up(tmp_path, said, fresh=True)
    assert not again.already_running and len(fake.starts) == 2
    assert again.state.machine_id != first.state.machine_id
    assert seed.read_secret(again.paths.password) != password


def test_stopped_vm_restarts_with_its_identity(tmp_path: Path, fake: FakeQemu) -> None:
    said: list[str] = []
    first = up(tmp_path, said, port=net.free_port())
    fake.running.clear()
    again = up(tmp_path, said)
    assert len(fake.starts) == 2 and again.state.machine_id == first.state.machine_id


def test_busy_port_is_replaced_and_said(tmp_path: Path, fake: FakeQemu) -> None:
    said: list[str] = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = up(tmp_path, said, port=busy)
    assert r.port != busy
    assert f"port {busy} is busy: using {r.port} instead" in said


def test_sudo_password_on_a_passwordless_vm_needs_fresh(tmp_path: Path,
                                                        fake: FakeQemu) -> None:
    up(tmp_path, [], port=net.free_port())
    with pytest.raises(UserError, match="add --fresh"):
        up(tmp_path, [], sudo_password=True)
    r = up(tmp_path, [], sudo_password=True, fresh=True)
    assert r.state.sudo_password


def test_next_steps_name_the_inventory(tmp_path: Path, fake: FakeQemu) -> None:
    r = up(tmp_path, [], port=net.free_port())
    assert f"inv host.harden -i {r.inventory}" in lab.next_steps(r)
    assert "inv lab.down" in lab.next_steps(r)
    other = up(tmp_path, [], name="other", port=net.free_port())
    steps = lab.next_steps(other)
    assert f"inv host.harden -i {other.paths.dir / 'inventory.yaml'}" in steps
    assert "inv lab.down --name other" in steps
