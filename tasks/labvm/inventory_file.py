"""The inventory and known_hosts written for the lab VMs.

``.lab/inventory.yaml`` lists every lab VM (``.lab/<name>/inventory.yaml`` only that
one, for tests); ``.lab/known_hosts`` holds each VM's host public keys under
``[127.0.0.1]:<port>``, so the first connection needs no trust-on-first-use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.labvm.net import GUEST_ALT_SSH_PORT, HOST, node_address

DOMAIN = "lab.internal"
ACME_EMAIL = "ops@lab.internal"
# qemu user networking: the guest sees this machine (the operator) as 10.0.2.2.
OPERATORS = ["10.0.2.2/32"]
# ...and the guest's own address there (qemu's DHCP): the node's InternalIP in K3s.
GUEST_ADDRESS = "10.0.2.15"
USER = "admin"
APPS: dict[str, dict[str, Any]] = {
    "api_gateway": {"image": "ghcr.io/team-mercurious/api-gateway:1.0.0", "replicas": 2},
    "api_generation": {"image": "ghcr.io/team-mercurious/api-generation:1.0.0"},
    "api_enrichment": {"image": "ghcr.io/team-mercurious/api-enrichment:1.0.0"},
}
HEADER = """\
# Written by `inv lab.up` for the lab VM(s) on this machine; rewritten by every
# lab.up and lab.down, so do not edit. Use: inv host.harden -i {path}
"""


@dataclass(frozen=True)
class LabHost:
    """One VM as the inventory and known_hosts see it."""

    name: str
    port: int
    host_keys: list[str]  # "ssh-ed25519 AAAA... comment"
    alt_port: int = 0  # forwarded to the guest's second SSH port (GUEST_ALT_SSH_PORT)
    node_index: int = 0  # on the nodes' network (net.node_address) when not 0
    role: str = "server"

    @property
    def internal_address(self) -> str:
        return node_address(self.node_index) if self.node_index else GUEST_ADDRESS

    def forwards(self) -> list[dict[str, int]]:
        """hosts[].ssh_forwards: the guest's sshd ports and the local ports reaching them."""
        out = [{"host_port": 22, "local_port": self.port}]
        if self.alt_port:
            out.append({"host_port": GUEST_ALT_SSH_PORT, "local_port": self.alt_port})
        return out


def host_pattern(port: int, host: str = HOST) -> str:
    """How OpenSSH/paramiko name ``host:port`` in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_text(hosts: list[LabHost]) -> str:
    lines = []
    for h in hosts:
        for key in h.host_keys:
            key_type, blob = key.split()[:2]
            lines += [f"{host_pattern(f['local_port'])} {key_type} {blob}"
                      for f in h.forwards()]
    return "\n".join(lines) + "\n" if lines else ""


def inventory_data(hosts: list[LabHost], *, in_vm_dir: bool = False) -> dict[str, Any]:
    """The inventory as plain data, for a file in ``.lab/`` (or in ``.lab/<name>/``)."""
    return {
        "domain": DOMAIN,
        "acme_email": ACME_EMAIL,
        "operators": list(OPERATORS),
        "hosts": [
            {"name": h.name, "address": HOST, "internal_address": h.internal_address,
             "ssh_forwards": h.forwards(), "user": USER,
             "key_file": "id_ed25519" if in_vm_dir else f"{h.name}/id_ed25519",
             "role": h.role}
            for h in hosts
        ],
        "host": {"ssh": {"known_hosts": "../known_hosts" if in_vm_dir else "known_hosts"}},
        "apps": {name: dict(app) for name, app in APPS.items()},
    }


def _dump(path: Path, data: dict[str, Any]) -> None:
    text = HEADER.format(path=shown(path)) + yaml.safe_dump(data, sort_keys=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write(root: Path, hosts: list[LabHost]) -> None:
    """Write (or, with no VMs left, remove) the lab inventories and known_hosts."""
    inventory, known = root / "inventory.yaml", root / "known_hosts"
    if not hosts:
        inventory.unlink(missing_ok=True)
        known.unlink(missing_ok=True)
        return
    known.write_text(known_hosts_text(hosts))
    _dump(inventory, inventory_data(hosts))
    for h in hosts:
        vm_inventory = root / h.name / "inventory.yaml"
        if vm_inventory.parent.is_dir():
            _dump(vm_inventory, inventory_data([h], in_vm_dir=True))


def shown(path: Path) -> str:
    """``path`` as the operator would type it: relative to the current folder if inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
