"""Where the lab keeps its files: ``.lab/`` in the repository, or ``$STACK_LAB_DIR``.

Layout::

    .lab/base/<hash>/       cached base image: rootfs.qcow2, vmlinuz, initrd.img, build.json
    .lab/<name>/            one VM: disk.qcow2 (overlay), seed.tar, keys, passwords, logs
    .lab/inventory.yaml     inventory for every lab VM (rewritten by lab.up and lab.down)
    .lab/known_hosts        the VMs' host public keys
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT

ENV_VAR = "STACK_LAB_DIR"
DEFAULT_NAME = "lab1"
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?")
# Names that are folders of the lab itself, not VMs.
_RESERVED = {"base"}


def lab_dir() -> Path:
    """``$STACK_LAB_DIR`` when set, else ``.lab/`` at the repository root."""
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser().resolve() if value else REPO_ROOT / ".lab"


def check_name(name: str) -> str:
    """Return ``name`` if it can name a VM (a short DNS label), else raise UserError."""
    if not _NAME.fullmatch(name) or name in _RESERVED:
        raise UserError(f"invalid VM name {name!r}: use lowercase letters, digits and '-'"
                        " (a DNS label, max 32 characters, not 'base')")
    return name


@dataclass(frozen=True)
class LabPaths:
    """The lab's folder and the files in it."""

    root: Path

    @classmethod
    def default(cls) -> LabPaths:
        return cls(lab_dir())

    @property
    def base_root(self) -> Path:
        return self.root / "base"

    def base(self, recipe_hash: str) -> Path:
        return self.base_root / recipe_hash

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    def vm(self, name: str) -> VmPaths:
        return VmPaths(self.root / check_name(name))

    def vm_names(self) -> list[str]:
        """Names of the VMs that exist (have a state file), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/vm.json")
                      if p.parent.name not in _RESERVED)


@dataclass(frozen=True)
class VmPaths:
    """Files of one VM, all under ``.lab/<name>/``."""

    dir: Path

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def state(self) -> Path:
        return self.dir / "vm.json"

    @property
    def disk(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def seed(self) -> Path:
        return self.dir / "seed.tar"

    @property
    def pidfile(self) -> Path:
        return self.dir / "qemu.pid"

    @property
    def monitor(self) -> Path:
        return self.dir / "monitor.sock"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def password(self) -> Path:
        return self.dir / "password"

    @property
    def root_password(self) -> Path:
        return self.dir / "root_password"

    @property
    def host_keys_pub(self) -> Path:
        return self.dir / "host_keys.pub"
