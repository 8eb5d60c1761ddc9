"""kafka.*: the Strimzi operator and the Kafka cluster the apps use (spec §8)."""

from __future__ import annotations

from invoke.collection import Collection

from tasks import kafka as layer
from tasks.cli import cluster_layer_task

deploy = cluster_layer_task(
    "deploy", layer.run,
    "Strimzi (pinned chart), the NetworkPolicy, Kafka my-cluster, its topics and user Ready.")

ns = Collection("kafka", deploy)
