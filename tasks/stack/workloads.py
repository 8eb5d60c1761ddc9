"""Names the kafka and apps components share, derived from the inventory.

The Kafka side (topics, the KafkaUser's ACLs, the consumer groups) and the application
side (bootstrap address, topics and group id each app is given) must agree; both read
these values from the template context (``derived.kafka_*`` / ``derived.app_*``, see
:func:`derived`), so they cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

from tasks.model.model import Inventory

# The plain (non-TLS) internal listener with SCRAM-SHA-512 (STACK.md section 12: "kafka
# bootstrap 9092 (internal)").
KAFKA_PORT = 9092
# Spec: a single node in dual role (broker + controller); topic replicas and replication
# factors cannot exceed it.
KAFKA_BROKERS = 1

# The inventory's apps (tasks/model/model.py, section apps) in the order they are rendered.
APP_KEYS = ("api_gateway", "api_generation", "api_enrichment")

# Topics each app is given, by topic-name prefix (STACK.md section 9: api-generation uses
# travel-generation.*, api-enrichment travel-enrichment.*). None: every topic (the gateway
# talks to all the microservices, including the travel-proposal.* flow).
APP_TOPIC_PREFIX: dict[str, str | None] = {
    "api_gateway": None,
    "api_generation": "travel-generation.",
    "api_enrichment": "travel-enrichment.",
}


def app_name(key: str) -> str:
    """``api_gateway`` (inventory key) -> ``api-gateway`` (object and group name)."""
    return key.replace("_", "-")


def topic_object_name(topic: str) -> str:
    """The KafkaTopic's metadata.name: Kubernetes names cannot hold ``_``."""
    return re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", topic.replace("_", "-"))


def app_topics(key: str, topics: list[str]) -> list[str]:
    prefix = APP_TOPIC_PREFIX[key]
    return [t for t in topics if prefix is None or t.startswith(prefix)]


def kafka_acls(topics: list[str], groups: list[str]) -> list[dict[str, Any]]:
    """The KafkaUser's ACLs: exactly the inventory's topics, and the apps' groups.

    Topics by literal name (Read, Write, Describe). Groups by prefix: NestJS's Kafka
    transport appends ``-client``/``-server`` to the group id it is given, so the group
    ``api-gateway`` is really used as ``api-gateway-client`` and ``api-gateway-server``.
    """
    rules: list[dict[str, Any]] = [
        {"resource": {"type": "topic", "name": t, "patternType": "literal"},
         "operations": ["Read", "Write", "Describe"], "host": "*"}
        for t in topics
    ]
    rules += [
        {"resource": {"type": "group", "name": g, "patternType": "prefix"},
         "operations": ["Read"], "host": "*"}
        for g in groups
    ]
    return rules


def _alternatives(names: list[str]) -> str:
    return "|".join(n.replace(".", r"\.") for n in names)


def derived(inv: Inventory) -> dict[str, Any]:
    """The ``derived`` entries of the kafka and apps components."""
    topics = list(inv.kafka.topics)
    groups = [app_name(k) for k in APP_KEYS]
    return {
        "kafka_port": KAFKA_PORT,
        "kafka_brokers": KAFKA_BROKERS,
        "kafka_bootstrap": f"{inv.kafka.cluster}-kafka-bootstrap.{inv.kafka.namespace}.svc"
                           f":{KAFKA_PORT}",
        "kafka_topics": [{"name": topic_object_name(t), "topic_name": t} for t in topics],
        "kafka_groups": groups,
        "kafka_acls": kafka_acls(topics, groups),
        # Kafka Exporter (Go regexp, unanchored unless we anchor): our topics and groups.
        "kafka_topic_regex": f"^({_alternatives(topics)})$",
        "kafka_group_regex": f"^({_alternatives(groups)})(-.+)?$",
        "app_topics": {k: ",".join(app_topics(k, topics)) for k in APP_KEYS},
    }
