""".gitignore keeps credentials and plaintext secrets out of git, and only them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tasks.repo import REPO_ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO_ROOT / ".git").exists(),
    reason="needs git and a git checkout of the repository")

IGNORED = [
    # kubeconfigs
    "k3s.yaml", "lab/k3s.yaml", "kubeconfig", "ops/kubeconfig", "kubeconfig.yaml",
    "vps1.kubeconfig", "ops/vps1.kubeconfig",
    # age keys
    "age.agekey", "secrets/flux.agekey", "age.key", "secrets/age.key", "keys.txt",
    ".config/sops/age/keys.txt", "ops/flux.age.key", "age-key.txt", "secrets/age-key.txt",
    # plaintext secret staging files
    "secrets/app.dec.yaml", "secrets/app.dec.yml", "manifests/apps/secret.dec.yaml",
    "secrets/app.plain.yaml", "secrets/nested/app.plain.yaml", "tmp/app.plain.yml",
    "secrets/app.decrypted.yaml", "app.decrypted.json",
    # SSH keys and certificates' private halves
    "id_rsa", "id_ed25519", "id_ecdsa", "keys/id_ed25519", "tls.pem", "certs/server.pem",
    "ssh_host_ed25519_key", "ops/deploy_key",
    # environment files
    ".env", ".env.local", ".env.production", "tasks/.env",
    # backups (age-encrypted cluster state)
    "backups/vps/20261202T071500Z.tar.age", "ops/lab/20261202T071500Z.tar.age",
]

NOT_IGNORED = [
    "secrets/app.sops.yaml", "secrets/secret-app.sops.yaml", "secrets/nested/app.sops.yaml",
    "secrets/secret-app.template.yaml", "secrets/README.md", ".sops.yaml",
    "inventory.yaml", "manifests/k3s/host/config.yaml", "id_ed25519.pub",
    "keys/id_rsa.pub", "ssh_host_ed25519_key.pub", "keys.txt.example", ".env.example",
    "tasks/stack/components/k3s.py", "tests/unit/test_gitignore.py",
]


def ignored(paths: list[str]) -> set[str]:
    """The paths the ignore rules match, as patterns only (--no-index: tracked or not)."""
    proc = subprocess.run(["git", "-c", "core.excludesFile=/dev/null", "check-ignore",
                           "--no-index", "--stdin"], cwd=REPO_ROOT,
                          input="\n".join(paths) + "\n", capture_output=True, text=True,
                          check=False)
    assert proc.returncode in (0, 1), proc.stderr  # 1: none of them is ignored
    return set(proc.stdout.splitlines())


@pytest.mark.parametrize("path", IGNORED)
def test_credentials_and_plaintext_secrets_are_ignored(path: str) -> None:
    assert ignored([path]) == {path}


@pytest.mark.parametrize("path", NOT_IGNORED)
def test_encrypted_secrets_templates_and_public_keys_are_not_ignored(path: str) -> None:
    assert ignored([path]) == set()


def test_no_tracked_file_is_ignored() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.splitlines()
    assert tracked
    assert ignored(tracked) == set()
    matched = subprocess.run(["git", "ls-files", "-ci", "--exclude-standard"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert matched == ""
