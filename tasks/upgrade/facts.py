"""What runs: the facts ``inv upgrade`` reads from the cluster, in one batch.

- every node's kubelet version (K3s reports its own: ``v1.33.3+k3s1``) and Ready
  condition, from ``kubectl get nodes -o json`` (``status.nodeInfo.kubeletVersion``);
- every Helm release (``helm list -A``: chart ``<name>-<version>``, status, revision),
  the same fact the cluster steps read (:func:`tasks.cluster.kube.releases_fact`);
- the Kafka CR: ``spec.kafka.version`` (asked for) and ``status.kafkaVersion`` (what
  Strimzi last reconciled the brokers to), None when there is no Kafka (or no CRD);
- for the health gate, the Deployments of a namespace and their Available condition.

A read that fails for another reason than "not there" is one line naming the cause
(:class:`tasks.cluster.kube.ClusterFactError`, turned into a UserError by ``read``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tasks.cluster import kube
from tasks.cluster.kube import ClusterFactError, ReleaseState, Tools
from tasks.engine.facts import Fact, Raw
from tasks.engine.shell import cmd


@dataclass(frozen=True)
class NodeState:
    name: str
    kubelet: str  # "v1.33.3+k3s1"
    ready: bool
    message: str = ""  # the Ready condition's message when not Ready


@dataclass(frozen=True)
class KafkaState:
    namespace: str
    name: str
    spec_version: str  # spec.kafka.version
    status_version: str  # status.kafkaVersion ("" until Strimzi reconciled it)
    ready: bool
    message: str = ""


@dataclass(frozen=True)
class DeploymentState:
    namespace: str
    name: str
    available: bool
    message: str = ""


@dataclass(frozen=True)
class Deployed:
    """Everything that moves with a pin, as the cluster runs it."""

    nodes: tuple[NodeState, ...]
    releases: dict[tuple[str, str], ReleaseState]
    kafka: KafkaState | None


def _items(raw: Raw, what: str) -> list[dict[str, Any]] | None:
    if raw.rc != 0:
        problem = kube.api_error(raw.stderr, what)
        if problem is None or "doesn't have a resource type" in raw.stderr:
            return None
        raise ClusterFactError(problem)
    data = json.loads(raw.stdout or "{}")
    return list(data.get("items") or []) if data.get("kind", "").endswith("List") else [data]


def _condition(obj: dict[str, Any], kind: str) -> tuple[bool, str]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c.get("status") == "True", str(c.get("message") or "")
    return False, f"no {kind} condition"


def _nodes(raw: Raw) -> tuple[NodeState, ...]:
    out = []
    for item in _items(raw, "reading the nodes") or []:
        ready, message = _condition(item, "Ready")
        info = (item.get("status") or {}).get("nodeInfo") or {}
        out.append(NodeState(item["metadata"]["name"], str(info.get("kubeletVersion", "")),
                             ready, "" if ready else message))
    return tuple(out)


def nodes_fact(tools: Tools) -> Fact[tuple[NodeState, ...]]:
    return Fact("upgrade:nodes", cmd(tools.kubectl, "get", "nodes", "-o", "json"), _nodes)


def _kafka(raw: Raw, namespace: str, name: str) -> KafkaState | None:
    items = _items(raw, f"reading Kafka {namespace}/{name}")
    if not items:
        return None
    obj = items[0]
    status = obj.get("status") or {}
    ready, message = _condition(obj, "Ready")
    if not ready:  # Strimzi says a failure as NotReady: "True" (see tasks/kafka)
        not_ready, why = _condition(obj, "NotReady")
        message = why if not_ready else message
    return KafkaState(namespace, name, str(((obj.get("spec") or {}).get("kafka") or {})
                                           .get("version", "")),
                      str(status.get("kafkaVersion") or ""), ready, "" if ready else message)


def kafka_fact(tools: Tools, namespace: str, name: str) -> Fact[KafkaState | None]:
    return Fact(f"upgrade:kafka:{namespace}/{name}",
                cmd(tools.kubectl, "get", "kafkas.kafka.strimzi.io", name, "-n", namespace,
                    "-o", "json"), lambda raw: _kafka(raw, namespace, name))


def _deployments(raw: Raw, namespace: str) -> tuple[DeploymentState, ...]:
    out = []
    for item in _items(raw, f"reading the Deployments of {namespace}") or []:
        ok, message = _condition(item, "Available")
        out.append(DeploymentState(namespace, item["metadata"]["name"], ok,
                                   "" if ok else message))
    return tuple(out)


def deployments_fact(tools: Tools, namespace: str) -> Fact[tuple[DeploymentState, ...]]:
    return Fact(f"upgrade:deployments:{namespace}",
                cmd(tools.kubectl, "get", "deployments", "-n", namespace, "-o", "json"),
                lambda raw: _deployments(raw, namespace))


def releases_fact(tools: Tools) -> Fact[dict[tuple[str, str], ReleaseState]]:
    return kube.releases_fact(tools)
