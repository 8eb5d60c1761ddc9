"""ingress.*: Traefik and cert-manager with both ClusterIssuers (spec §3-4)."""

from __future__ import annotations

from invoke.collection import Collection

from tasks import ingress as layer
from tasks.cli import cluster_layer_task

certs = cluster_layer_task(
    "certs", layer.run,
    "Traefik's NodePorts, cert-manager (pinned chart), its API, both ClusterIssuers Ready.")

ns = Collection("ingress", certs)
