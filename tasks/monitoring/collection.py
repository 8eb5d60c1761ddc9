"""monitoring.*: kube-prometheus-stack, Grafana's dashboards, Loki when asked (spec §6-7)."""

from __future__ import annotations

from invoke.collection import Collection

from tasks import monitoring as layer
from tasks.cli import cluster_layer_task

install = cluster_layer_task(
    "install", layer.install,
    "kube-prometheus-stack (pinned chart), Grafana's admin Secret and dashboards, Loki and"
    " Alloy when asked, the Traefik and cert-manager ServiceMonitors, volumes Bound, targets up.")

ns = Collection("monitoring", install)
