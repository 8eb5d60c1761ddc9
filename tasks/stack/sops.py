"""SOPS/age (spec §10): creation rules, secret templates, and proof of encryption.

``.sops.yaml`` at the repository root holds the creation rules rendered from the
inventory's age recipients (sops finds it from any directory below);
``secrets/*.template.yaml`` describe every Secret the stack needs with placeholders
instead of values; ``secrets/*.sops.yaml`` (written by ``inv secrets.init``, which fills
the templates in and encrypts them: ``tasks/secrets/``) are the only files with values,
and only ever encrypted. Nothing here runs sops: it renders, parses and checks text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tasks.repo import REPO_ROOT
from tasks.stack.render import (
    Document,
    Release,
    parse_documents,
    relative,
    render_text,
)

SECRETS_DIR = REPO_ROOT / "secrets"
SOPS_CONFIG = REPO_ROOT / ".sops.yaml"
ENCRYPTED_REGEX = "^(data|stringData)$"
PATH_REGEX = r"\.sops\.ya?ml$"
TEMPLATE_SUFFIX = ".template.yaml"
SOPS_SUFFIX = ".sops.yaml"

# Templates whose Secrets flux.bootstrap creates directly in the cluster: Flux cannot
# decrypt the key it decrypts with, nor read its repository without its deploy key, so
# these never go into the GitOps repository.
BOOTSTRAP_ONLY = frozenset({"secret-flux"})
# Templates of values the hosts use, not the cluster (the K3s token, which k3s.install
# reads with tasks.secrets.store.SecretStore): never applied, never in the GitOps layout.
HOST_ONLY = frozenset({"secret-k3s"})
NOT_IN_GITOPS = BOOTSTRAP_ONLY | HOST_ONLY

# `<generate: what>` a random or generated value; `<input: what>` a value the operator
# supplies; `<value: text>` a non-secret value to write as is. Identical placeholders in
# one file stand for one value (e.g. the Kafka password in two namespaces).
PLACEHOLDER = re.compile(r"^<(generate|input|value): [^<>]+>$")
_ENC = re.compile(r"^ENC\[AES256_GCM,data:[^,\]]*,iv:[^,\]]+,tag:[^,\]]+,type:[a-z]+\]$")


def creation_rules(recipients: list[str]) -> str:
    """The text of ``.sops.yaml`` for these age recipients."""
    body = {"creation_rules": [{
        "path_regex": PATH_REGEX,
        "encrypted_regex": ENCRYPTED_REGEX,
        "age": ",".join(recipients),
    }]}
    head = ("# SOPS creation rules (spec §10), rendered from the inventory's"
            " secrets.age_recipients\n# by tasks/stack/sops.py: `inv gitops.render"
            " --sops-config` rewrites this file.\n# Only data/stringData are encrypted,"
            " so kind, name and namespace stay readable.\n")
    return head + yaml.safe_dump(body, sort_keys=False, width=1000)


def templates(secrets_dir: Path = SECRETS_DIR) -> list[Path]:
    return sorted(secrets_dir.glob(f"*{TEMPLATE_SUFFIX}"))


def stem(path: Path) -> str:
    """``secret-kafka`` for secret-kafka.template.yaml and secret-kafka.sops.yaml."""
    name = path.name
    for suffix in (TEMPLATE_SUFFIX, SOPS_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def template_documents(ctx: Mapping[str, Any], secrets_dir: Path = SECRETS_DIR
                       ) -> list[Document]:
    """Every template rendered for this inventory: Secrets with placeholder values."""
    docs: list[Document] = []
    for path in templates(secrets_dir):
        docs += parse_documents(render_text(path, ctx), relative(path))
    return docs


def template_problems(docs: list[Document]) -> list[str]:
    """Templates hold Secrets whose every value is a placeholder, never a real value."""
    out = []
    for doc in docs:
        if doc.api_version != "v1" or doc.kind != "Secret":
            out.append(f"{doc.label}: kind: a secret template holds only v1 Secrets")
            continue
        if not doc.namespace:
            out.append(f"{doc.label}: metadata.namespace: required")
        if doc.obj.get("data"):
            out.append(f"{doc.label}: data: use stringData with placeholders (data would"
                       " hold base64 values)")
        values = doc.obj.get("stringData")
        if not isinstance(values, dict) or not values:
            out.append(f"{doc.label}: stringData: must list the keys with placeholders")
            continue
        for key, value in values.items():
            if not isinstance(value, str) or not PLACEHOLDER.match(value):
                out.append(f"{doc.label}: stringData.{key}: must be a placeholder"
                           " <generate: ...>, <input: ...> or <value: ...>, not a value")
    return out


def encryption_problems(text: str, source: str) -> list[str]:
    """Why ``text`` is not a SOPS-encrypted file of Secrets (empty when it is)."""
    try:
        objs = [o for o in yaml.safe_load_all(text) if o is not None]
    except yaml.YAMLError as exc:
        return [f"{source}: invalid YAML: {getattr(exc, 'problem', exc)}"]
    if not objs:
        return [f"{source}: empty"]
    out = []
    for obj in objs:
        if not isinstance(obj, dict):
            out.append(f"{source}: expected a Secret, got {type(obj).__name__}")
            continue
        label = f"{source}: {obj.get('kind')} {(obj.get('metadata') or {}).get('name')}"
        meta = obj.get("sops")
        if not isinstance(meta, dict) or not meta.get("mac") or not meta.get("age"):
            out.append(f"{label}: sops: missing or without age recipients and MAC: not"
                       " encrypted with `sops --encrypt`")
        if meta and isinstance(meta, dict) and meta.get("encrypted_regex") not in (
                None, ENCRYPTED_REGEX):
            out.append(f"{label}: sops.encrypted_regex: must be {ENCRYPTED_REGEX}")
        for field in ("data", "stringData"):
            values = obj.get(field) or {}
            if not isinstance(values, dict):
                continue
            for key, value in values.items():
                if not isinstance(value, str) or not _ENC.match(value):
                    out.append(f"{label}: {field}.{key}: plaintext value (must be"
                               " ENC[AES256_GCM,...])")
    return out


def encrypted_files(secrets_dir: Path = SECRETS_DIR) -> list[Path]:
    """``secrets/*.sops.yaml`` (not a ``.sops.yaml`` config, should one be there)."""
    return sorted(p for p in secrets_dir.glob(f"*{SOPS_SUFFIX}") if not p.name.startswith("."))


def load_config(path: Path = SOPS_CONFIG) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return data if isinstance(data, dict) else {}


def _walk(value: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in a nested structure."""
    found: list[Any] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += [v] if k == key else []
            found += _walk(v, key)
    elif isinstance(value, list):
        for item in value:
            found += _walk(item, key)
    return found


def referenced_secrets(docs: Iterable[Document], releases: Iterable[Release] = ()
                       ) -> set[tuple[str, str]]:
    """(namespace, name) of the Secrets our objects and chart values read.

    Pod specs (env, envFrom, volumes, imagePullSecrets), ``secretKeyRef``/``secretRef``
    anywhere (KafkaUser passwords, Flux sources and decryption) and ``existingSecret``
    in chart values. TLS Secrets that cert-manager or Strimzi write are not references.
    """
    out: set[tuple[str, str]] = set()
    for doc in docs:
        ns = doc.namespace or ""
        names = [ref.get("name") for key in ("secretKeyRef", "secretRef")
                 for ref in _walk(doc.obj, key) if isinstance(ref, dict)]
        names += [v.get("secretName") for v in _walk(doc.obj, "secret") if isinstance(v, dict)]
        names += [p.get("name") for ps in _walk(doc.obj, "imagePullSecrets")
                  if isinstance(ps, list) for p in ps if isinstance(p, dict)]
        out |= {(ns, str(n)) for n in names if n}
    for rel in releases:
        out |= {(rel.namespace, str(v)) for v in _walk(rel.values, "existingSecret")
                if isinstance(v, str) and v}
    return out
