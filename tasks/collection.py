"""The root collection ``inv`` shows: one sub-collection per namespace."""

from __future__ import annotations

from invoke.collection import Collection

from tasks import inventory_tasks

ns = Collection()
ns.add_collection(inventory_tasks.ns)
