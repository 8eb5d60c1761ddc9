"""Kafka (STACK.md section 8): the Strimzi operator chart and the cluster's objects.

The operator is a :class:`Release` of the Strimzi chart at ``versions.strimzi`` with
``helm-values/strimzi.yaml``. The objects are ``manifests/kafka/*.yaml``; ``topics.yaml``
is rendered once per inventory topic (``${topic.name}``, ``${topic.topic_name}``).
:func:`checks` holds the rules a schema cannot express (replication against the broker
count, ACLs against the topics, the NetworkPolicy against the listener); they live in
:mod:`tasks.stack.components.kafka_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.stack.components import kafka_rules
from tasks.stack.render import (
    MANIFESTS,
    Bundle,
    Document,
    Release,
    parse_documents,
    relative,
    render_text,
    values_file,
)

NAME = "kafka"

RELEASE = "strimzi"
CHART = "strimzi-kafka-operator"
REPO_NAME = "strimzi"
REPO_URL = "https://strimzi.io/charts/"
TOPICS_FILE = "topics.yaml"


def documents(ctx: Mapping[str, Any]) -> list[Document]:
    """``manifests/kafka/*.yaml``, ``topics.yaml`` once per topic; the Namespace first."""
    docs: list[Document] = []
    for path in sorted((MANIFESTS / "kafka").glob("*.yaml")):
        if path.name == TOPICS_FILE:
            for topic in ctx["derived"]["kafka_topics"]:
                text = render_text(path, {**ctx, "topic": topic})
                docs += parse_documents(text, relative(path))
        else:
            docs += parse_documents(render_text(path, ctx), relative(path))
    # The Namespace is applied first (the files sort alphabetically).
    return sorted(docs, key=lambda d: d.kind != "Namespace")


def operator_release(ctx: Mapping[str, Any]) -> Release:
    """The Strimzi cluster operator, watching its own namespace (the cluster's)."""
    source, values = values_file("strimzi", ctx)
    return Release(name=RELEASE, namespace=ctx["kafka"]["namespace"], repo_name=REPO_NAME,
                   repo_url=REPO_URL, chart=CHART, version=ctx["versions"]["strimzi"],
                   values_source=source, values=values)


def render(ctx: Mapping[str, Any]) -> Bundle:
    return Bundle(documents=documents(ctx), releases=[operator_release(ctx)])


def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """Semantic errors, one line each: ``<file>: <Kind> <name>: <field>: <problem>``."""
    return kafka_rules.check(bundle.documents, strimzi=ctx["versions"]["strimzi"],
                             user=ctx["kafka"]["user"])
