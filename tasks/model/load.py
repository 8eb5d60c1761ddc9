"""Loading and validating an inventory file, before any connection is opened."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tasks.engine.errors import InventoryError
from tasks.model import yaml_input
from tasks.model.fields import build, json_schema, show
from tasks.model.model import Host, Inventory
from tasks.repo import REPO_ROOT

ENV_VAR = "STACK_INVENTORY"
DEFAULT_PATH = REPO_ROOT / "inventory.yaml"
SCHEMA_PATH = REPO_ROOT / "inventory.schema.json"


@dataclass(frozen=True)
class Loaded:
    """A validated inventory and where it came from (paths resolve against its folder)."""

    data: Inventory
    path: Path

    def resolve(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.path.parent / p)

    def key_file(self, host: Host) -> Path:
        return self.resolve(host.key_file)

    @property
    def known_hosts(self) -> Path:
        return self.resolve(self.data.host.ssh.known_hosts)

    def host(self, name: str) -> Host:
        for h in self.data.hosts:
            if h.name == name:
                return h
        names = ", ".join(h.name for h in self.data.hosts)
        raise InventoryError(f"{self.path.name}: no host named {show(name)} (hosts: {names})")


def choose_path(explicit: str | None) -> Path:
    """``-i PATH``, else ``$STACK_INVENTORY``, else ``inventory.yaml`` in the repository."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_PATH


def load(path: Path, *, require_key_files: bool = True) -> Loaded:
    """Parse and validate; raises :class:`InventoryError` listing every problem.

    ``require_key_files=False`` is for offline tasks (``inv validate``) that never
    connect: SSH key files need not exist on that machine.
    """
    label = path.name
    text = yaml_input.read(path, label, f"pass -i PATH or set {ENV_VAR}")
    data = yaml_input.parse(text, label)
    inventory, errors = build(Inventory, data)
    loaded = Loaded(inventory, path.resolve())
    if not errors:
        errors = _semantic_errors(loaded, require_key_files)
    if errors:
        lines = [f"{label}: {e}" for e in errors]
        raise InventoryError(lines[0], lines=lines)
    return loaded


def _semantic_errors(loaded: Loaded, require_key_files: bool = True) -> list[str]:
    inv = loaded.data
    errors: list[str] = []
    if not inv.hosts:
        errors.append("hosts: at least one host is required")
    if not inv.operators:
        errors.append("operators: at least one CIDR is required (your own address, e.g."
                      " 203.0.113.7/32), or the firewall would lock you out of the API")
    seen: dict[str, int] = {}
    for i, host in enumerate(inv.hosts):
        if host.name in seen:
            errors.append(f"hosts[{i}].name: duplicate of hosts[{seen[host.name]}]"
                          f" ({show(host.name)})")
        seen.setdefault(host.name, i)
        key = loaded.key_file(host)
        if require_key_files and not key.is_file():
            errors.append(f"hosts[{i}].key_file: file not found: {key} (create one with"
                          " ssh-keygen -t ed25519, or fix the path)")
    if inv.hosts and not inv.servers:
        errors.append("hosts: at least one host needs role: server")
    pods = ipaddress.ip_network(inv.k3s.pod_cidr)
    services = ipaddress.ip_network(inv.k3s.service_cidr)
    if pods.overlaps(services):
        errors.append(f"k3s.service_cidr: overlaps k3s.pod_cidr ({pods})")
    dupes = sorted({t for t in inv.kafka.topics if inv.kafka.topics.count(t) > 1})
    if dupes:
        errors.append(f"kafka.topics: duplicate topic {show(dupes[0])}")
    taken = {"kube-system": "Kubernetes itself", "cert-manager": "cert-manager",
             "flux-system": "Flux", "monitoring": "monitoring", inv.kafka.namespace: "kafka"}
    if inv.apps.namespace in taken:
        errors.append(f"apps.namespace: {show(inv.apps.namespace)} is already used by"
                      f" {taken[inv.apps.namespace]}; give the applications their own")
    if inv.kafka.namespace in ("kube-system", "cert-manager", "flux-system", "monitoring"):
        errors.append(f"kafka.namespace: {show(inv.kafka.namespace)} is a system"
                      " namespace; give Kafka its own")
    http, https = inv.k3s.traefik_http_nodeport, inv.k3s.traefik_https_nodeport
    if http == https:
        errors.append(f"k3s.traefik_https_nodeport: same as traefik_http_nodeport ({http})")
    return errors


def schema() -> dict[str, object]:
    return json_schema(Inventory, "inventory.yaml of the K3s VPS platform")


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"
