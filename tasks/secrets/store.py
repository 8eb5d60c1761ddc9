"""``secrets/*.sops.yaml``: where they are, writing them, and reading them decrypted.

Other tasks read secrets through :class:`SecretStore`: ``k3s.install`` takes the cluster
token with ``store.value("secret-k3s", "token")``, the cluster tasks pipe
``store.decrypt_to_apply(name)`` into ``kubectl apply -f -``. Decrypted text only ever
lives in memory: sops' stdout captured by this process, handed to the caller.

Encrypted files are written whole or not at all (a temporary file in the same
directory, then a rename) with mode 0644: they hold only ciphertext, are meant to be
committed and copied to the GitOps repository, and a git clone makes them 0644 anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks import localfile
from tasks.engine.errors import UserError
from tasks.model.load import Loaded
from tasks.repo import REPO_ROOT
from tasks.secrets import binaries, keys
from tasks.secrets.sopscli import Sops
from tasks.stack import sops as rules

ENCRYPTED_MODE = 0o644


@dataclass(frozen=True)
class Paths:
    """The repository whose ``secrets/`` and ``.sops.yaml`` the tasks work on."""

    root: Path = REPO_ROOT

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def sops_config(self) -> Path:
        return self.root / ".sops.yaml"

    def encrypted(self, stem: str) -> Path:
        return self.secrets_dir / f"{stem}{rules.SOPS_SUFFIX}"

    def template(self, stem: str) -> Path:
        return self.secrets_dir / f"{stem}{rules.TEMPLATE_SUFFIX}"

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def stems(self) -> list[str]:
        """Every name with a template or an encrypted file, sorted."""
        return sorted({rules.stem(p) for p in rules.templates(self.secrets_dir)}
                      | {rules.stem(p) for p in rules.encrypted_files(self.secrets_dir)})

    def name(self, given: str) -> str:
        """``secret-app`` for ``secret-app``, ``app`` or ``secrets/secret-app.sops.yaml``."""
        stem = rules.stem(Path(given))
        known = self.stems()
        for candidate in (stem, f"secret-{stem}"):
            if candidate in known:
                return candidate
        raise UserError(f"no secret named {given!r} in {self.rel(self.secrets_dir)}/"
                        f" (names: {', '.join(known) or 'none'})")


def write_atomic(path: Path, data: bytes, mode: int = ENCRYPTED_MODE) -> None:
    """Replace ``path`` with ``data`` in one rename (a reader sees old or new, whole)."""
    localfile.write_atomic(path, data, mode)


def recipients_of(text: str) -> list[str]:
    """The age recipients an encrypted file's sops metadata lists (first document)."""
    try:
        first = next(iter(yaml.safe_load_all(text)), None)
    except yaml.YAMLError:
        return []
    meta = first.get("sops") if isinstance(first, dict) else None
    entries = meta.get("age") if isinstance(meta, dict) else None
    return [str(e["recipient"]) for e in entries or []
            if isinstance(e, dict) and e.get("recipient")]


def parse_decrypted(data: bytes, source: str) -> list[dict[str, Any]]:
    """The documents of decrypted sops output (no error message quotes the text)."""
    try:
        docs = [d for d in yaml.safe_load_all(data.decode()) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError):
        raise UserError(f"{source}: decrypted, but not YAML") from None
    if not all(isinstance(d, dict) for d in docs):
        raise UserError(f"{source}: decrypted, but not a list of objects")
    return docs


@dataclass(frozen=True)
class SecretStore:
    """Reading ``secrets/*.sops.yaml`` decrypted, with the operator's key."""

    paths: Paths
    sops: Sops
    recipients: tuple[str, ...]

    @classmethod
    def open(cls, loaded: Loaded, root: Path = REPO_ROOT) -> SecretStore:
        """For this inventory: its key file, its pinned sops, its recipients."""
        paths = Paths(root)
        key = keys.locate(loaded)
        keys.refuse_inside(key, root)
        binary = binaries.checked_sops(loaded.data.versions.sops)
        return cls(paths, Sops(binary, key.path, paths.sops_config),
                   tuple(loaded.data.secrets.age_recipients))

    def _path(self, name: str) -> Path:
        path = self.paths.encrypted(self.paths.name(name))
        if not path.is_file():
            raise UserError(f"{self.paths.rel(path)}: missing: run inv secrets.init")
        if not self.sops.key_file.is_file():
            raise UserError(f"age key file {self.sops.key_file}: missing: copy your age key"
                            " there (or set secrets.age_key_file), or run inv secrets.init")
        return path

    def decrypt_to_apply(self, name: str) -> bytes:
        """The decrypted manifests of ``name``, for ``kubectl apply -f -`` on stdin."""
        return self.sops.decrypt(self._path(name))

    def documents(self, name: str) -> list[dict[str, Any]]:
        """Every decrypted document of ``name``."""
        path = self._path(name)
        return parse_decrypted(self.sops.decrypt(path), self.paths.rel(path))

    def decrypt(self, name: str, secret: str | None = None) -> dict[str, Any]:
        """One decrypted Secret of ``name``: the one named ``secret``, else the only one."""
        name = self.paths.name(name)
        docs = self.documents(name)
        found = [d for d in docs if secret is None
                 or (d.get("metadata") or {}).get("name") == secret]
        if len(found) != 1:
            names = ", ".join(str((d.get("metadata") or {}).get("name")) for d in docs)
            raise UserError(f"{name}: {len(found)} Secrets match"
                            f" {secret or 'any name'} (it holds: {names})")
        return found[0]

    def value(self, name: str, key: str, secret: str | None = None) -> str:
        """One decrypted value: ``stringData[key]`` of that Secret."""
        name = self.paths.name(name)
        values = self.decrypt(name, secret).get("stringData") or {}
        value = values.get(key) if isinstance(values, dict) else None
        if not isinstance(value, str) or not value:
            raise UserError(f"{name}: no stringData.{key} (keys: {', '.join(values)})")
        return value
