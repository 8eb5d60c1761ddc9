"""The inventory and known_hosts the lab writes: valid for the model, keys pinned."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from tasks.labvm import inventory_file
from tasks.labvm.inventory_file import LabHost
from tasks.model import load
from tests.unit.inventory_text import OPENSSH_HEADER


@pytest.fixture(scope="module")
def host_keys() -> list[paramiko.PKey]:
    return [paramiko.ECDSAKey.generate(), paramiko.RSAKey.generate(1024)]


def lab_host(name: str, port: int, keys: list[paramiko.PKey]) -> LabHost:
    return LabHost(name, port, [f"{k.get_name()} {k.get_base64()} root@{name}" for k in keys])


def make_lab(root: Path, hosts: list[LabHost]) -> None:
    for h in hosts:
        (root / h.name).mkdir(parents=True)
        (root / h.name / "id_ed25519").write_text(OPENSSH_HEADER)
    inventory_file.write(root, hosts)


def test_inventory_is_valid_for_the_model(tmp_path: Path,
                                          host_keys: list[paramiko.PKey]) -> None:
    make_lab(tmp_path, [lab_host("lab1", 2222, host_keys)])
    loaded = load(tmp_path / "inventory.yaml")
    inv = loaded.data
    assert inv.domain == "lab.internal"
    assert inv.acme_email == "ops@lab.internal"
    assert inv.operators == ["10.0.2.2/32"]
    (host,) = inv.hosts
    assert (host.name, host.address, host.user, host.role) == (
        "lab1", "127.0.0.1", "admin", "server")
    assert host.connect_ports(inv.host.ssh.port) == (2222,)  # guest port 22, forwarded
    assert host.key_file == "lab1/id_ed25519"
    assert loaded.key_file(host) == tmp_path / "lab1/id_ed25519"
    assert loaded.known_hosts == tmp_path / "known_hosts"
    assert inv.host.ssh.port == 22  # sshd in the guest; 2222 is the forward
    assert inv.apps.api_gateway.image == "ghcr.io/team-mercurious/api-gateway:1.0.0"
    assert inv.apps.api_generation.image == "ghcr.io/team-mercurious/api-generation:1.0.0"
    assert inv.apps.api_enrichment.image == "ghcr.io/team-mercurious/api-enrichment:1.0.0"


def test_per_vm_inventory_lists_only_that_vm(tmp_path: Path,
                                             host_keys: list[paramiko.PKey]) -> None:
    make_lab(tmp_path, [lab_host("lab1", 2222, host_keys), lab_host("e2e", 40000, host_keys)])
    assert [h.name for h in load(tmp_path / "inventory.yaml").data.hosts] == ["lab1", "e2e"]
    loaded = load(tmp_path / "e2e" / "inventory.yaml")
    (host,) = loaded.data.hosts
    assert (host.name, host.connect_port(22)) == ("e2e", 40000)
    assert loaded.key_file(host) == tmp_path / "e2e" / "id_ed25519"
    assert loaded.known_hosts.resolve() == (tmp_path / "known_hosts").resolve()


def test_known_hosts_pins_each_key_for_the_forwarded_port(
        tmp_path: Path, host_keys: list[paramiko.PKey]) -> None:
    make_lab(tmp_path, [lab_host("lab1", 2222, host_keys)])
    text = (tmp_path / "known_hosts").read_text()
    assert all(line.startswith("[127.0.0.1]:2222 ") for line in text.splitlines())
    known = paramiko.HostKeys(str(tmp_path / "known_hosts"))
    entry = known.lookup("[127.0.0.1]:2222")
    assert entry is not None
    for key in host_keys:
        assert known.check("[127.0.0.1]:2222", key)
    assert known.lookup("[127.0.0.1]:2223") is None


def test_no_vms_left_removes_the_files(tmp_path: Path,
                                       host_keys: list[paramiko.PKey]) -> None:
    make_lab(tmp_path, [lab_host("lab1", 2222, host_keys)])
    inventory_file.write(tmp_path, [])
    assert not (tmp_path / "inventory.yaml").exists()
    assert not (tmp_path / "known_hosts").exists()


def test_host_pattern() -> None:
    assert inventory_file.host_pattern(2222) == "[127.0.0.1]:2222"
    assert inventory_file.host_pattern(22) == "127.0.0.1"


def test_lab_inventory_renders_a_valid_stack() -> None:
    """The stack validates for the lab too: the node's in-cluster IP is qemu's guest IP."""
    from tasks.model.fields import build
    from tasks.model.model import Inventory
    from tasks.stack.context import context
    from tasks.stack.validate import validate_context

    inv, errors = build(Inventory, inventory_file.inventory_data([LabHost("lab1", 2222, [])]))
    assert errors == []
    assert inv.hosts[0].internal_address == "10.0.2.15"
    report = validate_context(context(inv))
    assert not [p for p in report.problems if "internal_address" in p], report.problems


def test_node_vms_have_their_node_address_and_role() -> None:
    data = inventory_file.inventory_data([LabHost("n1", 2222, [], 2223, 1, "server"),
                                          LabHost("n2", 2224, [], 2225, 2, "agent")])
    assert [(h["name"], h["internal_address"], h["role"]) for h in data["hosts"]] == [
        ("n1", "10.99.0.1", "server"), ("n2", "10.99.0.2", "agent")]
    from tasks.model.fields import build
    from tasks.model.model import Inventory

    inv, errors = build(Inventory, data)
    assert errors == [] and [h.role for h in inv.hosts] == ["server", "agent"]
