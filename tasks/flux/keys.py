"""Flux's own secrets: the deploy key, its age identity, the Git host's known_hosts.

Generated once by ``flux.bootstrap`` and kept SOPS-encrypted in
``secrets/secret-flux.sops.yaml`` (never in the GitOps repository: Flux cannot decrypt the
key it decrypts with). The deploy key is made in memory (ed25519, OpenSSH format), the
age identity by ``age-keygen`` on a pipe; neither is ever written in clear.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tasks.engine.errors import UserError
from tasks.model.load import Loaded
from tasks.secrets import binaries
from tasks.secrets.store import SecretStore, write_atomic
from tasks.stack.components.flux import DEPLOY_KEY_SECRET, NAMESPACE, SOPS_SECRET

NAME = "secret-flux"
KNOWN_HOSTS_ENV = "STACK_SECRET_FLUX_SYSTEM__KNOWN_HOSTS"

# The host keys the Git hosts publish (GitHub: docs.github.com "GitHub's SSH key
# fingerprints", whose SHA256 fingerprints tests/unit/test_flux.py checks; GitLab:
# docs.gitlab.com "SSH host keys fingerprints").
PUBLISHED_HOST_KEYS = {
    "github.com": [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezO"
        "mxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNU"
        "kY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsm"
        "erOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+"
        "38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJ"
        "wbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqEx"
        "KbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/Wnw"
        "H6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=",
    ],
    "gitlab.com": [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeGdHEDZAxv0",
    ],
}


@dataclass(frozen=True)
class FluxKeys:
    deploy_public: str  # "ssh-ed25519 AAAA... flux-vps": to add as a read-only deploy key
    age_public: str  # "age1...": must be one of secrets.age_recipients


def git_host(repository: str) -> str:
    return urlparse(repository).hostname or ""


def known_hosts(repository: str) -> str:
    """The Git host's keys: published ones for GitHub and GitLab, else the operator's."""
    host = git_host(repository)
    if host in PUBLISHED_HOST_KEYS:
        return "".join(f"{host} {key}\n" for key in PUBLISHED_HOST_KEYS[host])
    given = os.environ.pop(KNOWN_HOSTS_ENV, "")
    if not given and sys.stdin.isatty():
        given = input(f"known_hosts line(s) of {host} (compare them with what the host"
                      " publishes): ")
    lines = [line.strip() for line in given.splitlines() if line.strip()]
    if not lines or not all(len(line.split()) >= 3 for line in lines):
        raise UserError(f"{host}: its SSH host keys are not known: set {KNOWN_HOSTS_ENV} to"
                        f" its known_hosts lines (ssh-keyscan {host}, checked against the"
                        " fingerprints the host publishes)")
    return "\n".join(lines) + "\n"


def new_deploy_key(comment: str) -> tuple[str, str]:
    """(private key, OpenSSH format; public key line), made in memory."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"


def _age_keygen(args: list[str], stdin: bytes | None = None) -> str:
    proc = subprocess.run([binaries.age_keygen_binary(), *args], input=stdin,
                          capture_output=True, env=binaries.scrubbed_environment(),
                          timeout=30, check=False)
    if proc.returncode != 0:
        raise UserError(f"age-keygen failed: {proc.stderr.decode(errors='replace')[-200:]}")
    return proc.stdout.decode()


def new_age_identity() -> tuple[str, str]:
    """(identity file text, public key), from ``age-keygen`` on a pipe."""
    text = _age_keygen([])
    return text, age_public(text)


def age_public(identity: str) -> str:
    return _age_keygen(["-y"], identity.encode()).strip()


def documents(private: str, public: str, hosts: str, identity: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/part-of": "k3s-vps-platform",
              "app.kubernetes.io/managed-by": "stack"}
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": DEPLOY_KEY_SECRET, "namespace": NAMESPACE, "labels": labels},
         "stringData": {"identity": private, "identity.pub": public, "known_hosts": hosts}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": SOPS_SECRET, "namespace": NAMESPACE, "labels": labels},
         "stringData": {"age.agekey": identity}},
    ]


def ensure(loaded: Loaded, store: SecretStore, *, check: bool) -> tuple[FluxKeys | None, bool]:
    """Flux's keys, generated and stored encrypted the first time; (keys, created).

    In plan mode nothing is generated: (None, False) when they do not exist yet.
    """
    path = store.paths.encrypted(NAME)
    if path.is_file():
        docs = {d["metadata"]["name"]: d for d in store.documents(NAME)}
        deploy = docs[DEPLOY_KEY_SECRET]["stringData"]["identity.pub"]
        identity = docs[SOPS_SECRET]["stringData"]["age.agekey"]
        return FluxKeys(deploy, age_public(identity)), False
    if check:
        return None, False
    inv = loaded.data
    hosts = known_hosts(inv.gitops.repository)
    private, public = new_deploy_key(f"flux-{inv.k3s.cluster_name}")
    identity, age = new_age_identity()
    plain = yaml.safe_dump_all(documents(private, public, hosts, identity), sort_keys=False)
    data = store.sops.encrypt(plain.encode(), list(store.recipients), f"writing {NAME}",
                              values=(private, identity))
    write_atomic(path, data)
    return FluxKeys(public, age), True
