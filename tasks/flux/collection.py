"""flux.*: bootstrap Flux (spec §5) without the flux CLI."""

from __future__ import annotations

from invoke.collection import Collection

from tasks import flux as layer
from tasks.cli import cluster_layer_task

bootstrap = cluster_layer_task(
    "bootstrap", layer.bootstrap,
    "Flux (pinned flux2 chart), its deploy key and sops-age Secrets, the sync objects Ready.")

ns = Collection("flux", bootstrap)
