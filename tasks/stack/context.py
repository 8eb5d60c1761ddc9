"""The values templates can use: the whole inventory plus a few derived names.

``${domain}``, ``${k3s.pod_cidr}``, ``${versions.k3s}``... are the inventory's own
fields (see tasks/model/model.py). Derived values live under ``derived``; each
component adds its own entries in its own section of :func:`derived` below.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tasks.model.model import Inventory
from tasks.stack import scrape, workloads


def derived(inv: Inventory) -> dict[str, Any]:
    server = inv.servers[0]
    sans = [*dict.fromkeys([*(h.address for h in inv.hosts), inv.domain, *inv.k3s.tls_san])]
    return {
        # general
        "api_host": inv.api_host,
        "server_name": server.name,
        "server_address": server.address,
        # k3s
        "tls_san": sans,
        # PodSecurity policy version: the cluster's minor ("v1.33" for v1.33.3+k3s1), for
        # the admission config and namespaces' pod-security.kubernetes.io/*-version labels.
        "psa_version": ".".join(inv.versions.k3s.split(".")[:2]),
        # kafka and apps: kafka_* and app_* (see tasks/stack/workloads.py)
        **workloads.derived(inv),
        # monitoring: monitoring_* (see tasks/stack/scrape.py)
        **scrape.derived(inv),
    }


def context(inv: Inventory) -> dict[str, Any]:
    """The mapping templates are rendered against."""
    return {**dataclasses.asdict(inv), "derived": derived(inv)}
