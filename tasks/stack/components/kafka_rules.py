"""Rules for the Strimzi objects that a JSON schema cannot express.

Every error is one line naming the file, the object and the field:
``manifests/kafka/topics.yaml: KafkaTopic x: spec.replicas: must be <= broker count 1``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tasks.stack.render import Document, dig, of_kind

CLUSTER_LABEL = "strimzi.io/cluster"
GROUP = "kafka.strimzi.io"


@dataclass(frozen=True)
class StrimziRelease:
    """What one Strimzi release supports (from its release notes and CRDs)."""

    kafka_versions: tuple[str, ...]
    api_versions: tuple[str, ...]


# Strimzi 0.47.0 (CHANGELOG, kafka-versions.yaml): Kafka 3.9.0, 3.9.1, 4.0.0 (default);
# every kind is served as kafka.strimzi.io/v1beta2 (v1 arrives in 0.49). Add a row when
# versions.strimzi moves.
STRIMZI: dict[str, StrimziRelease] = {
    "0.47.0": StrimziRelease(kafka_versions=("3.9.0", "3.9.1", "4.0.0"),
                             api_versions=(f"{GROUP}/v1beta2",)),
}

# Kafka's own defaults, used when the Kafka CR leaves a setting out.
KAFKA_DEFAULTS = {
    "offsets.topic.replication.factor": 3,
    "transaction.state.log.replication.factor": 3,
    "transaction.state.log.min.isr": 2,
    "default.replication.factor": 1,
    "min.insync.replicas": 1,
}
REPLICATION_FACTORS = ("offsets.topic.replication.factor",
                       "transaction.state.log.replication.factor",
                       "default.replication.factor")
# (minimum in-sync replicas, the replication factor it must not exceed)
MIN_ISR = (("min.insync.replicas", "default.replication.factor"),
           ("transaction.state.log.min.isr", "transaction.state.log.replication.factor"))



def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _of(docs: Iterable[Document], kind: str) -> list[Document]:
    """The Strimzi objects of one kind."""
    return of_kind(docs, kind, GROUP)


def _cluster(doc: Document) -> str | None:
    value = dig(doc.obj, "metadata", "labels", CLUSTER_LABEL)
    return str(value) if value is not None else None


def topic_name(doc: Document) -> str:
    return str(dig(doc.obj, "spec", "topicName") or doc.name)


def broker_counts(docs: list[Document]) -> dict[str, int]:
    """Kafka name -> replicas summed over its node pools with the broker role."""
    counts = {k.name: 0 for k in _of(docs, "Kafka")}
    for pool in _of(docs, "KafkaNodePool"):
        cluster = _cluster(pool)
        if cluster in counts and "broker" in (dig(pool.obj, "spec", "roles") or []):
            counts[cluster] += _int(dig(pool.obj, "spec", "replicas")) or 0
    return counts


def check(docs: list[Document], *, strimzi: str, user: str) -> list[str]:
    """Every rule over the kafka component's documents."""
    brokers = broker_counts(docs)
    return [*api_versions(docs, strimzi), *cluster_labels(docs, brokers),
            *node_pools(docs), *kafka_config(docs, brokers), *kafka_version(docs, strimzi),
            *topics(docs, brokers), *acls(docs, user), *network_policy(docs)]


def api_versions(docs: list[Document], strimzi: str) -> list[str]:
    release = STRIMZI.get(strimzi)
    if release is None:
        return []  # kafka_version reports the unknown release once
    return [f"{d.label}: apiVersion: {d.api_version} is not served by Strimzi {strimzi}"
            f" (use {', '.join(release.api_versions)})"
            for d in docs if d.api_version.startswith(f"{GROUP}/")
            and d.api_version not in release.api_versions]


def cluster_labels(docs: list[Document], brokers: dict[str, int]) -> list[str]:
    """Node pools, topics and users must name an existing Kafka in strimzi.io/cluster."""
    names = ", ".join(sorted(brokers)) or "none"
    out = []
    for doc in docs:
        if doc.kind in ("KafkaNodePool", "KafkaTopic", "KafkaUser") and (
                _cluster(doc) not in brokers):
            out.append(f"{doc.label}: metadata.labels.{CLUSTER_LABEL}: must name the Kafka"
                       f" cluster ({names}), got {json.dumps(_cluster(doc))}")
    return out


def node_pools(docs: list[Document]) -> list[str]:
    """KRaft needs, per cluster, a pool with the controller and one with the broker role."""
    out = []
    for kafka in _of(docs, "Kafka"):
        roles = {r for p in _of(docs, "KafkaNodePool") if _cluster(p) == kafka.name
                 and (_int(dig(p.obj, "spec", "replicas")) or 0) > 0
                 for r in dig(p.obj, "spec", "roles") or []}
        out += [f"{kafka.label}: KafkaNodePool: no node pool with the {role} role"
                for role in ("controller", "broker") if role not in roles]
    return out


def kafka_config(docs: list[Document], brokers: dict[str, int]) -> list[str]:
    """Replication factors <= broker count; minimum ISRs <= their replication factor."""
    out = []
    for kafka in _of(docs, "Kafka"):
        config = dig(kafka.obj, "spec", "kafka", "config") or {}
        value = {k: _int(config.get(k, default)) or 0 for k, default in KAFKA_DEFAULTS.items()}
        count = brokers.get(kafka.name, 0)
        for key in REPLICATION_FACTORS:
            if value[key] > count:
                out.append(f"{kafka.label}: spec.kafka.config.{key}: must be <= broker count"
                           f" {count} (is {value[key]})")
        for isr, factor in MIN_ISR:
            if value[isr] > value[factor]:
                out.append(f"{kafka.label}: spec.kafka.config.{isr}: must be <= {factor}"
                           f" {value[factor]} (is {value[isr]})")
    return out


def kafka_version(docs: list[Document], strimzi: str) -> list[str]:
    release = STRIMZI.get(strimzi)
    out = []
    for kafka in _of(docs, "Kafka"):
        version = dig(kafka.obj, "spec", "kafka", "version")
        if release is None:
            out.append(f"{kafka.label}: spec.kafka.version: the Kafka versions of Strimzi"
                       f" {strimzi} (versions.strimzi) are not known: add them to STRIMZI in"
                       " tasks/stack/components/kafka_rules.py from its release notes")
        elif version not in release.kafka_versions:
            out.append(f"{kafka.label}: spec.kafka.version: {json.dumps(version)} is not"
                       f" supported by Strimzi {strimzi} (supported:"
                       f" {', '.join(release.kafka_versions)}; see versions.kafka)")
    return out


def topics(docs: list[Document], brokers: dict[str, int]) -> list[str]:
    """Topic replicas <= the broker count; a topic's min ISR <= its replicas; no twins."""
    out = []
    seen: set[tuple[str | None, str]] = set()
    for topic in _of(docs, "KafkaTopic"):
        key = (_cluster(topic), topic_name(topic))
        if key in seen:
            out.append(f"{topic.label}: spec.topicName: topic {key[1]} is defined twice")
        seen.add(key)
        replicas = _int(dig(topic.obj, "spec", "replicas"))
        count = brokers.get(key[0] or "")
        if replicas is not None and count is not None and replicas > count:
            out.append(f"{topic.label}: spec.replicas: must be <= broker count {count}")
        isr = _int(dig(topic.obj, "spec", "config", "min.insync.replicas"))
        if isr is not None and replicas is not None and isr > replicas:
            out.append(f"{topic.label}: spec.config.min.insync.replicas: must be <="
                       f" spec.replicas {replicas}")
    return out


def acls(docs: list[Document], user: str) -> list[str]:
    """Topic ACLs name existing KafkaTopics literally; the app user covers every topic."""
    out = []
    for account in _of(docs, "KafkaUser"):
        known = {topic_name(t) for t in _of(docs, "KafkaTopic")
                 if _cluster(t) == _cluster(account)}
        covered = set()
        rules = dig(account.obj, "spec", "authorization", "acls") or []
        for i, rule in enumerate(rules):
            resource = dig(rule, "resource") or {}
            if resource.get("type") != "topic":
                continue
            where = f"{account.label}: spec.authorization.acls[{i}].resource"
            name = resource.get("name")
            if resource.get("patternType", "literal") != "literal":
                out.append(f"{where}.patternType: topic ACLs must name one topic (literal),"
                           f" got {resource.get('patternType')} {json.dumps(name)}")
            elif name not in known:
                out.append(f"{where}.name: no KafkaTopic {json.dumps(name)}")
            else:
                covered.add(name)
        if account.name == user:
            out += [f"{account.label}: spec.authorization.acls: no ACL for topic {t}"
                    for t in sorted(known - covered)]
    return out


def _broker_labels(cluster: str) -> dict[str, str]:
    return {CLUSTER_LABEL: cluster, "strimzi.io/kind": "Kafka",
            "strimzi.io/name": f"{cluster}-kafka"}


def _selects(policy: Document, labels: dict[str, str]) -> bool:
    wanted = dig(policy.obj, "spec", "podSelector", "matchLabels") or {}
    expressions = dig(policy.obj, "spec", "podSelector", "matchExpressions")
    return not expressions and all(labels.get(k) == v for k, v in wanted.items())


def _canonical(peers: Any) -> list[str]:
    return sorted(json.dumps(p, sort_keys=True) for p in peers or [])


def network_policy(docs: list[Document]) -> list[str]:
    """Every listener limits its peers, and our NetworkPolicy admits the same peers."""
    out = []
    for kafka in _of(docs, "Kafka"):
        policies = [p for p in docs if p.kind == "NetworkPolicy"
                    and p.namespace == kafka.namespace and _selects(p, _broker_labels(kafka.name))]
        if not policies:
            out.append(f"{kafka.label}: NetworkPolicy: none selects the Kafka pods"
                       f" ({', '.join(f'{k}={v}' for k, v in _broker_labels(kafka.name).items())})")
        listeners = dig(kafka.obj, "spec", "kafka", "listeners") or []
        for i, listener in enumerate(listeners):
            where = f"{kafka.label}: spec.kafka.listeners[{i}]"
            peers = _canonical(listener.get("networkPolicyPeers"))
            if not peers:
                out.append(f"{where}.networkPolicyPeers: missing: Strimzi would open port"
                           f" {listener.get('port')} to every pod")
                continue
            for policy in policies:
                ours = _canonical(
                    peer for rule in dig(policy.obj, "spec", "ingress") or []
                    if any(p.get("port") == listener.get("port") for p in rule.get("ports") or [])
                    for peer in rule.get("from") or [])
                if ours != peers:
                    out.append(f"{policy.label}: spec.ingress: port {listener.get('port')}"
                               " must admit exactly the listener's networkPolicyPeers"
                               f" ({kafka.label}, spec.kafka.listeners[{i}])")
    return out
