"""Loading and validating an inventory file, before any connection is opened."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tasks.engine.errors import InventoryError
from tasks.model import checks, yaml_input
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
    connect: SSH key files need not exist on that machine. Otherwise each key file must
    be a private key, and known_hosts (when it exists) a known_hosts file.
    """
    label = path.name
    text = yaml_input.read(path, label, f"pass -i PATH or set {ENV_VAR}")
    data = yaml_input.parse(text, label)
    inventory, errors = build(Inventory, data)
    loaded = Loaded(inventory, path.resolve())
    if not errors:
        errors = checks.semantic_errors(loaded, require_key_files)
    if errors:
        lines = [f"{label}: {e}" for e in errors]
        raise InventoryError(lines[0], lines=lines)
    return loaded


def schema() -> dict[str, object]:
    return json_schema(Inventory, "inventory.yaml of the K3s VPS platform")


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"
