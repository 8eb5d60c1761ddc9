"""A healthy local setup for the doctor tests, in a temporary folder, with real tools.

An inventory with its SSH key file and known_hosts, an age key made by the real
age-keygen, a ``secrets/`` folder whose one file the real sops encrypted for it (with a
canary value that must never be printed), and a charts cache with every pinned chart's
archive and a lock file holding their digests. Each test then breaks one thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.doctor.run import Env
from tasks.model import Loaded, load
from tasks.secrets.sopscli import Sops
from tasks.stack import charts
from tasks.stack.context import context
from tasks.tooling.catalog import TOOLS
from tasks.tooling.fetch import sha256_file
from tasks.tooling.install import installed
from tasks.tooling.lookup import TOOLS_DIR
from tests.unit.inventory_text import OPENSSH_HEADER
from tests.unit.secrets_repo import SOPS_VERSION, new_key, real_sops

CANARY = "CANARY-doctor-3e9d1"
SECRET = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: doctor-test, namespace: app}}
stringData:
  password: {CANARY}
"""


@dataclass
class Case:
    dir: Path
    inventory: Path
    age_key: Path
    root: Path
    cache: Path
    lock: Path
    public_key: str

    def loaded(self, require_key_files: bool = False) -> Loaded:
        return load(self.inventory, require_key_files=require_key_files)

    def env(self, **kw: object) -> Env:
        base: dict[str, object] = dict(root=self.root, charts_cache=self.cache,
                                       charts_lock=self.lock, port_timeout=1.0,
                                       ssh_timeout=2.0)
        base.update(kw)
        return Env(**base)  # type: ignore[arg-type]

    def write_inventory(self, *, address: str = "127.0.0.1", port: int = 22,
                        user: str = "admin", key_file: str = "id_test",
                        host_extra: str = "", extra: str = "") -> None:
        self.inventory.write_text(
            "domain: example.test\nacme_email: ops@example.test\n"
            "operators: [203.0.113.10/32]\n"
            f"hosts:\n  - {{name: vps1, address: {address}, port: {port}, user: {user},"
            f" key_file: {key_file}{host_extra}}}\n"
            f"versions: {{sops: {SOPS_VERSION}}}\n"
            f"secrets:\n  age_key_file: {self.age_key}\n"
            f"  age_recipients: [{self.public_key}]\n" + extra)


#: What the inventory pins (sops: the PyPI build the tests use).
VERSIONS = {"helm": "4.1.4", "kubectl": "1.33.9", "sops": SOPS_VERSION, "age": "1.1.1"}


def needs_installed_tools() -> None:
    """Skip unless ``inv tools.install`` put every pinned tool in .cache/tools."""
    for name, version in VERSIONS.items():
        if installed(TOOLS[name], version, TOOLS_DIR)[0] is None:
            pytest.skip(f"needs {name} {version} installed (inv tools.install)")


def make_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    """Skips (saying why) without the real sops 3.11.0 and age-keygen."""
    sops = real_sops()
    for name in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "STACK_SOPS"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    age_key = home / "keys.txt"
    public = new_key(age_key)
    age_key.chmod(0o600)
    root = tmp_path / "repo"
    (root / "secrets").mkdir(parents=True)
    (tmp_path / "id_test").write_text(OPENSSH_HEADER + "AAAA\n")
    case = Case(tmp_path, tmp_path / "inventory.yaml", age_key, root, tmp_path / "charts",
                tmp_path / "charts.lock.yaml", public)
    case.write_inventory()
    encrypted = Sops(sops, age_key, root / ".sops.yaml").encrypt(
        SECRET.encode(), [public], "doctor test secret")
    (root / "secrets" / "secret-doctor.sops.yaml").write_bytes(encrypted)
    case.cache.mkdir()
    entries = {}
    for chart in charts.pinned_charts(context(case.loaded().data)):
        archive = case.cache / chart.file_name
        archive.write_bytes(f"test stand-in archive of {chart.label}\n".encode())
        entries[chart.key] = charts.Locked(sha256_file(archive), "doctor test")
    charts.write_lock(entries, case.lock)
    return case
