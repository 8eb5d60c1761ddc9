"""Lab operations without a VM: per-VM secrets, state, inventories, user errors."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import paramiko
import pytest

from tasks.engine.errors import UserError
from tasks.labvm import lab, seed, status, tools, vm
from tasks.labvm.paths import LabPaths, check_name, lab_dir
from tasks.model import load


@pytest.fixture
def paths(tmp_path: Path) -> LabPaths:
    return LabPaths(tmp_path / ".lab")


@pytest.fixture
def fast_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only an Ed25519 host key: RSA 3072 generation is slow and tested once."""
    monkeypatch.setattr(seed, "HOST_KEY_TYPES", (("ed25519", []),))


def new_vm(paths: LabPaths, name: str, port: int, *, sudo_password: bool = False) -> seed.Identity:
    v = paths.vm(name)
    identity = seed.create(v, sudo_password=sudo_password)
    vm.write_state(v, vm.VmState(name=name, port=port, base="0" * 16,
                                 machine_id=identity.machine_id, sudo_password=sudo_password))
    return identity


def test_lab_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_LAB_DIR", str(tmp_path / "x"))
    assert lab_dir() == tmp_path / "x"
    monkeypatch.delenv("STACK_LAB_DIR")
    assert lab_dir().name == ".lab"


@pytest.mark.parametrize("name", ["lab1", "e2e", "a", "web-2"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["Lab1", "-x", "base", "a_b", "", "x" * 40, "../etc"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(UserError, match="invalid VM name"):
        check_name(name)


def test_seed_makes_fresh_private_secrets(paths: LabPaths) -> None:
    a = new_vm(paths, "lab1", 2222)
    b = new_vm(paths, "lab2", 2223, sudo_password=True)
    assert a.machine_id != b.machine_id and len(a.machine_id) == 32
    assert a.host_keys != b.host_keys
    assert sorted(k.split()[0] for k in a.host_keys) == [
        "ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"]
    v = paths.vm("lab1")
    for secret in (v.password, v.root_password, v.key, v.seed):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert stat.S_IMODE(v.dir.stat().st_mode) == 0o700
    password = seed.read_secret(v.password)
    assert len(password) >= 20
    assert password != seed.read_secret(paths.vm("lab2").password)
    rsa = paramiko.RSAKey.from_private_key(io.StringIO(_member(v.seed, "ssh_host_rsa_key")))
    assert rsa.get_bits() == 3072
    members = _members(v.seed)
    assert members["machine-id"].strip() == a.machine_id
    assert members["hostname"] == "lab1\n"
    assert members["sudo"] == "nopasswd\n"
    assert _members(paths.vm("lab2").seed)["sudo"] == "password\n"
    assert members["admin.hash"].startswith("$6$")
    assert password not in v.seed.read_bytes().decode(errors="replace")
    assert members["authorized_keys"] == v.key.with_suffix(".pub").read_text()


def _members(archive: Path) -> dict[str, str]:
    with tarfile.open(archive) as tar:
        return {m.name.removeprefix("seed/"): tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                for m in tar.getmembers()}


def _member(archive: Path, name: str) -> str:
    return _members(archive)[name]


def test_write_inventories_from_state(paths: LabPaths, fast_keys: None) -> None:
    identity = new_vm(paths, "lab1", 2222)
    inventory = lab.write_inventories(paths)
    loaded = load(inventory)
    assert [h.connect_port(22) for h in loaded.data.hosts] == [2222]
    known = paramiko.HostKeys(str(paths.known_hosts))
    for key in identity.host_keys:
        key_type, blob = key.split()[:2]
        assert known.lookup("[127.0.0.1]:2222")[key_type].get_base64() == blob  # type: ignore[index]
    assert load(paths.vm("lab1").dir / "inventory.yaml").data.hosts[0].name == "lab1"


def test_ssh_argv_needs_a_running_vm(paths: LabPaths, fast_keys: None) -> None:
    with pytest.raises(UserError, match="no lab VM named 'lab1'"):
        lab.ssh_argv("lab1", paths=paths)
    new_vm(paths, "lab1", 2222)
    with pytest.raises(UserError, match=r"not running: start it with inv lab\.up"):
        lab.ssh_argv("lab1", paths=paths)


def test_ssh_argv_pins_the_host_key(paths: LabPaths, fast_keys: None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    new_vm(paths, "lab1", 2345)
    monkeypatch.setattr(vm, "running", lambda v: True)
    argv = lab.ssh_argv("lab1", ["sudo", "-n", "true"], paths=paths)
    assert argv[-4:] == ["admin@127.0.0.1", "sudo", "-n", "true"]
    assert f"UserKnownHostsFile={paths.known_hosts}" in argv
    assert "StrictHostKeyChecking=yes" in argv
    assert argv[argv.index("-p") + 1] == "2345"
    assert argv[argv.index("-i") + 1] == str(paths.vm("lab1").key)


def test_status_and_down_without_qemu(paths: LabPaths, fast_keys: None) -> None:
    assert status.status_lines(paths) == ["no lab VMs (inv lab.up starts one)"]
    new_vm(paths, "lab1", 2222)
    lab.write_inventories(paths)
    lines = status.status_lines(paths)
    assert lines[0].startswith("lab1: stopped, ssh 127.0.0.1:2222")
    said: list[str] = []
    lab.down("lab1", say=said.append, paths=paths)
    assert not paths.vm("lab1").dir.exists()
    assert not paths.inventory.exists()
    lab.down("lab1", say=said.append, paths=paths)
    assert said[-1] == "lab1: no such lab VM (nothing to stop)"


def test_purge_refuses_while_other_vms_use_the_base(paths: LabPaths, fast_keys: None) -> None:
    new_vm(paths, "lab2", 2223)
    with pytest.raises(UserError, match=r"other lab VMs use it \(lab2\)"):
        lab.down("lab1", purge=True, say=lambda s: None, paths=paths)


def test_missing_program_names_the_apt_package() -> None:
    with pytest.raises(UserError) as exc:
        tools.require("qemu-system-x86_64", "no-such-program-xyz")
    assert "apt-get install" in str(exc.value)
    assert "qemu-system-x86" in str(exc.value)
