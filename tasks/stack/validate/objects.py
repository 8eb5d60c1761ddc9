"""Checks on and across objects: names, plaintext Secrets, duplicates, namespaces, releases.

The schemas do not say which names the API server accepts, which kinds are
cluster-scoped, or whether a namespace is created by anyone: these checks do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tasks.stack.render import Document, Release
from tasks.stack.validate.schemas import split_api_version

# Namespaces every K3s cluster has.
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

# (group, kind) of the cluster-scoped kinds we may emit; every other kind is namespaced.
# Add a custom cluster-scoped kind here when a component starts emitting one.
CLUSTER_SCOPED = frozenset({
    ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("networking.k8s.io", "IngressClass"), ("node.k8s.io", "RuntimeClass"),
    ("scheduling.k8s.io", "PriorityClass"), ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "VolumeAttachment"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("cert-manager.io", "ClusterIssuer"),
})

_PINNED_CHART = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# Kinds whose names must be DNS-1123 labels (RFC 1035 for Services); others: subdomains.
_LABEL_NAMED = {"Namespace"}
_RFC1035_NAMED = {"Service"}


def is_namespaced(doc: Document) -> bool:
    group, _ = split_api_version(doc.api_version)
    return (group, doc.kind) not in CLUSTER_SCOPED


def _name_problem(kind: str, name: str, group: str = "") -> str | None:
    if group == "rbac.authorization.k8s.io":
        # RBAC names are path segments ("cert-manager-webhook:dynamic-serving" is fine).
        ok = name not in (".", "..") and not any(c in name for c in "/%")
        return None if ok else f"{name!r} is not a path segment name (no '/' or '%')"
    if kind in _RFC1035_NAMED:
        ok, what = len(name) <= 63 and bool(_LABEL_1035.match(name)), "an RFC 1035 label"
    elif kind in _LABEL_NAMED:
        ok, what = len(name) <= 63 and bool(_LABEL_1123.match(name)), "a DNS label"
    else:
        ok, what = len(name) <= 253 and bool(_SUBDOMAIN.match(name)), "a DNS subdomain"
    return None if ok else f"{name!r} is not {what} (lowercase letters, digits, '-')"


def _label_problems(labels: object) -> list[str]:
    if not isinstance(labels, dict):
        return []  # the schema reports the type
    out = []
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix))) or (
                len(name) > 63 or not _LABEL_NAME.match(name)):
            out.append(f"metadata.labels: invalid label key {key!r}")
        if isinstance(value, str) and (len(value) > 63 or not _LABEL_VALUE.match(value)):
            out.append(f"metadata.labels[{key!r}]: invalid label value {value!r} (max 63"
                       " characters: letters, digits, '-', '_', '.')")
    return out


def metadata_problems(doc: Document) -> list[str]:
    """Name, namespace and labels the API server would refuse, as ``path: problem``."""
    meta = doc.obj.get("metadata")
    if not isinstance(meta, dict):
        return [] if "metadata" in doc.obj else ["metadata: required field missing"]
    out = []
    if not doc.name:
        out.append("metadata.name: required field missing")
    else:
        problem = _name_problem(doc.kind, doc.name, split_api_version(doc.api_version)[0])
        if problem:
            out.append(f"metadata.name: {problem}")
    if doc.namespace is not None and not _LABEL_1123.match(doc.namespace):
        out.append(f"metadata.namespace: {doc.namespace!r} is not a DNS label")
    return out + _label_problems(meta.get("labels"))


def secret_problems(doc: Document) -> list[str]:
    """Rendered objects are committed (GitOps layout): no Secret may carry values."""
    if doc.kind != "Secret" or doc.api_version != "v1":
        return []
    return [f"{key}: a Secret with values in plaintext; keep it SOPS-encrypted under"
            " secrets/ (encrypted_regex ^(data|stringData)$)"
            for key in ("data", "stringData") if doc.obj.get(key)]


def _key(doc: Document) -> tuple[str, str, str, str]:
    group, _ = split_api_version(doc.api_version)
    return group, doc.kind, doc.namespace or "", doc.name


def duplicates(docs: Iterable[Document]) -> list[str]:
    """Objects that appear twice (same group, kind, namespace and name)."""
    seen: dict[tuple[str, str, str, str], Document] = {}
    out = []
    for doc in docs:
        key = _key(doc)
        first = seen.setdefault(key, doc)
        if first is not doc:
            where = f"{key[2]}/" if key[2] else ""
            out.append(f"{doc.label}: duplicate object: {key[0] or 'core'} {doc.kind}"
                       f" {where}{doc.name} is also defined in {first.source}")
    return out


def created_namespaces(docs: Iterable[Document]) -> set[str]:
    return {d.name for d in docs if d.kind == "Namespace" and d.api_version == "v1"}


def namespace_problems(docs: list[Document], releases: Iterable[Release] = (), *,
                       created: Iterable[str] = ()) -> list[str]:
    """Namespaced objects (and chart releases) in a namespace nobody creates (``docs``
    and ``created`` create them)."""
    known = created_namespaces(docs) | set(created) | SYSTEM_NAMESPACES
    hint = "create it as a Namespace in the component's manifests"
    out = []
    for doc in docs:
        if not is_namespaced(doc):
            if doc.namespace:
                out.append(f"{doc.label}: metadata.namespace: {doc.kind} is cluster-scoped;"
                           " remove the namespace")
        elif not doc.namespace:
            out.append(f"{doc.label}: metadata.namespace: missing (namespaced objects name"
                       " their namespace, or they land in whatever namespace applies them)")
        elif doc.namespace not in known:
            out.append(f"{doc.label}: metadata.namespace: namespace {doc.namespace!r} is not"
                       f" created by any component ({hint})")
    for rel in releases:
        if rel.namespace not in known:
            out.append(f"{rel.values_source}: Release {rel.name}: namespace"
                       f" {rel.namespace!r} is not created by any component ({hint})")
    return out


def release_problems(releases: Iterable[Release]) -> list[str]:
    """Chart releases: an exact chart version, and each release installed once."""
    out = []
    seen: dict[tuple[str, str], Release] = {}
    for rel in releases:
        label = f"{rel.values_source}: Release {rel.name}"
        if not _PINNED_CHART.match(rel.version):
            out.append(f"{label}: version: {rel.version!r} is not an exact chart version"
                       " (pin one, e.g. 1.13.1)")
        first = seen.setdefault((rel.namespace, rel.name), rel)
        if first is not rel:
            out.append(f"{label}: duplicate release {rel.namespace}/{rel.name} (also from"
                       f" {first.values_source})")
    return out
