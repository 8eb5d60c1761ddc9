"""The cluster's state as ``inv status`` reads it: read-only kubectl calls, parsed into
plain values.

Each read is one ``kubectl get ... -o json`` (a List, as kubectl 1.33 prints it, items
of several types each with its own ``kind``), so a converged cluster costs one batch:
nodes, workloads of every namespace, PVCs, cert-manager's Certificates, Flux's
Kustomizations and GitRepositories, the Kafka and its topics; Helm releases come from
the layers' ``helm list`` (tasks/cluster/kube.py). A kind whose CRD is not installed
reads as ``None`` (``error: the server doesn't have a resource type "..."``); any other
failure is a :class:`ClusterFactError` naming its cause (tasks.cluster.kube.api_error).
Then, once the nodes are known, each node's kubelet summary through the API server's
node proxy (``/api/v1/nodes/<node>/proxy/stats/summary``) gives the volumes' usage.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tasks.cluster.kube import ClusterFactError, Tools, api_error
from tasks.engine.errors import error_tail
from tasks.engine.facts import Fact, Raw
from tasks.engine.shell import cmd

T = TypeVar("T")
NOT_SERVED = "the server doesn't have a resource type"

CERTIFICATES = "certificates.cert-manager.io"
FLUX_KINDS = "kustomizations.kustomize.toolkit.fluxcd.io,gitrepositories.source.toolkit.fluxcd.io"
KAFKA_KINDS = "kafkas.kafka.strimzi.io,kafkatopics.kafka.strimzi.io"


@dataclass(frozen=True)
class Condition:
    status: str  # "True", "False", "Unknown"
    reason: str
    message: str


@dataclass(frozen=True)
class Node:
    name: str
    ready: Condition | None
    kubelet: str  # status.nodeInfo.kubeletVersion: "v1.33.3+k3s1"


@dataclass(frozen=True)
class Workload:
    kind: str  # Deployment, StatefulSet
    namespace: str
    name: str
    wanted: int  # spec.replicas
    available: int  # Deployment: availableReplicas; StatefulSet: readyReplicas
    message: str  # the Available condition's message when it is not True


@dataclass(frozen=True)
class Certificate:
    namespace: str
    name: str
    ready: Condition | None
    not_after: dt.datetime | None


@dataclass(frozen=True)
class Resource:
    """A custom resource that reports Ready (Flux's and Strimzi's kinds)."""

    kind: str
    namespace: str
    name: str
    ready: Condition | None  # Strimzi's NotReady: "True" is read as Ready "False"
    revision: str = ""  # Flux: lastAppliedRevision, or the GitRepository's artifact's


@dataclass(frozen=True)
class Claim:
    namespace: str
    name: str
    phase: str
    capacity: str  # status.capacity.storage once Bound


@dataclass(frozen=True)
class Usage:
    used: int
    capacity: int


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def condition(obj: dict[str, Any], kind: str) -> Condition | None:
    for c in _obj(obj.get("status")).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == kind:
            return Condition(str(c.get("status", "")), str(c.get("reason") or ""),
                             " ".join(str(c.get("message") or "").split()))
    return None


def _meta(obj: dict[str, Any]) -> tuple[str, str]:
    meta = _obj(obj.get("metadata"))
    return str(meta.get("namespace") or "-"), str(meta.get("name") or "")


def _items(raw: Raw, what: str) -> list[dict[str, Any]] | None:
    if raw.rc != 0:
        if NOT_SERVED in raw.stderr:
            return None
        raise ClusterFactError(api_error(raw.stderr, what)
                               or f"{what}: kubectl exit {raw.rc}: {error_tail(raw.stderr)}")
    data = _obj(json.loads(raw.stdout or "{}"))
    return [i for i in data.get("items") or [] if isinstance(i, dict)]


def _listing(key: str, what: str, argv: tuple[str, ...],
             parse: Callable[[list[dict[str, Any]]], T]) -> Fact[T | None]:
    def read(raw: Raw) -> T | None:
        items = _items(raw, what)
        return None if items is None else parse(items)
    return Fact(f"status:{key}", cmd(*argv), read)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def nodes(items: list[dict[str, Any]]) -> list[Node]:
    return [Node(_meta(i)[1], condition(i, "Ready"),
                 str(_obj(_obj(i.get("status")).get("nodeInfo")).get("kubeletVersion", "")))
            for i in items]


def workloads(items: list[dict[str, Any]]) -> list[Workload]:
    out = []
    for i in items:
        kind = str(i.get("kind", ""))
        namespace, name = _meta(i)
        spec, status = _obj(i.get("spec")), _obj(i.get("status"))
        wanted = spec.get("replicas", 1)
        available = status.get("availableReplicas" if kind == "Deployment" else "readyReplicas")
        cond = condition(i, "Available")
        message = cond.message if cond is not None and cond.status != "True" else ""
        out.append(Workload(kind, namespace, name, _int(wanted), _int(available), message))
    return out


def timestamp(text: str) -> dt.datetime | None:
    """An RFC 3339 time as the API writes it (``2026-03-05T08:00:00Z``)."""
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def certificates(items: list[dict[str, Any]]) -> list[Certificate]:
    return [Certificate(*_meta(i), condition(i, "Ready"),
                        timestamp(str(_obj(i.get("status")).get("notAfter") or "")))
            for i in items]


def resources(items: list[dict[str, Any]]) -> list[Resource]:
    out = []
    for i in items:
        status = _obj(i.get("status"))
        ready = condition(i, "Ready")
        failed = condition(i, "NotReady")  # Strimzi 0.47: a failure is NotReady "True"
        if failed is not None and failed.status == "True" and (ready is None
                                                               or ready.status != "True"):
            ready = Condition("False", failed.reason, failed.message)
        revision = str(status.get("lastAppliedRevision")
                       or _obj(status.get("artifact")).get("revision") or "")
        out.append(Resource(str(i.get("kind", "")), *_meta(i), ready, revision))
    return out


def claims(items: list[dict[str, Any]]) -> list[Claim]:
    return [Claim(*_meta(i), str(_obj(i.get("status")).get("phase") or ""),
                  str(_obj(_obj(i.get("status")).get("capacity")).get("storage") or ""))
            for i in items]


def node_fact(tools: Tools) -> Fact[list[Node] | None]:
    return _listing("nodes", "reading the nodes", (tools.kubectl, "get", "nodes", "-o", "json"),
                    nodes)


def workloads_fact(tools: Tools) -> Fact[list[Workload] | None]:
    return _listing("workloads", "reading the Deployments and StatefulSets",
                    (tools.kubectl, "get", "deployments,statefulsets", "-A", "-o", "json"),
                    workloads)


def claims_fact(tools: Tools) -> Fact[list[Claim] | None]:
    return _listing("pvcs", "reading the PVCs",
                    (tools.kubectl, "get", "persistentvolumeclaims", "-A", "-o", "json"), claims)


def certificates_fact(tools: Tools) -> Fact[list[Certificate] | None]:
    return _listing("certificates", "reading the Certificates",
                    (tools.kubectl, "get", CERTIFICATES, "-A", "-o", "json"), certificates)


def flux_fact(tools: Tools) -> Fact[list[Resource] | None]:
    return _listing("flux", "reading Flux's Kustomizations and GitRepositories",
                    (tools.kubectl, "get", FLUX_KINDS, "-A", "-o", "json"), resources)


def kafka_fact(tools: Tools, namespace: str) -> Fact[list[Resource] | None]:
    return _listing("kafka", f"reading the Kafka and KafkaTopics of namespace {namespace}",
                    (tools.kubectl, "get", KAFKA_KINDS, "-n", namespace, "-o", "json"),
                    resources)


def summary_path(node: str) -> str:
    return f"/api/v1/nodes/{node}/proxy/stats/summary"


def usage(raw: Raw, node: str) -> dict[tuple[str, str], Usage]:
    """Each PVC's volume usage on ``node``, from the kubelet's summary (pods[].volume[]
    with a ``pvcRef``); empty when the kubelet reports none."""
    if raw.rc != 0:
        raise ClusterFactError(api_error(raw.stderr, f"reading the kubelet summary of {node}")
                               or f"reading the kubelet summary of {node}: kubectl exit"
                                  f" {raw.rc}")
    out = {}
    for pod in _obj(json.loads(raw.stdout or "{}")).get("pods") or []:
        for volume in _obj(pod).get("volume") or []:
            ref = _obj(_obj(volume).get("pvcRef"))
            if ref.get("name") and isinstance(volume.get("capacityBytes"), int):
                out[(str(ref.get("namespace", "")), str(ref["name"]))] = Usage(
                    _int(volume.get("usedBytes")), _int(volume["capacityBytes"]))
    return out


def usage_fact(tools: Tools, node: str) -> Fact[dict[tuple[str, str], Usage]]:
    return Fact(f"status:summary:{node}", cmd(tools.kubectl, "get", "--raw", summary_path(node)),
                lambda raw: usage(raw, node))
