"""What the monitoring component derives from the inventory (``derived.monitoring_*``).

K3s runs the controller manager, the scheduler and kube-proxy inside the ``k3s`` process
on each node, not as pods, so Prometheus finds them through fixed Endpoints: the nodes'
cluster-internal IPs (``hosts[].internal_address``, else ``hosts[].address``). The
controller manager and scheduler run on servers only; kube-proxy on every node.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from tasks.model.model import Host, Inventory

# Prometheus stops adding blocks before its volume is full: its size-based retention is
# this share of the PVC (the WAL and compaction need the rest).
RETENTION_SIZE_SHARE = 0.85

_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?")


def node_ip(host: Host) -> str:
    """The address Prometheus reaches ``host``'s K3s components on."""
    return host.internal_address or host.address


def is_node_ip(value: str) -> bool:
    """An IP a pod can reach a node on (not a DNS name, loopback or unspecified)."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified or address.is_multicast)


def quantity_bytes(quantity: str) -> int:
    """``10Gi`` -> 10737418240 (the inventory's QUANTITY rule already checked the form)."""
    match = _QUANTITY.fullmatch(quantity)
    if not match:
        raise ValueError(f"not a size: {quantity!r}")
    return int(float(match[1]) * _UNITS[match[2] or ""])


def retention_size(pvc: str) -> str:
    """Prometheus ``retentionSize`` for a PVC of size ``pvc``, in MiB (``10Gi`` -> ``8704MiB``)."""
    return f"{int(quantity_bytes(pvc) * RETENTION_SIZE_SHARE) // 2**20}MiB"


def derived(inv: Inventory) -> dict[str, Any]:
    return {
        "monitoring_server_ips": list(dict.fromkeys(node_ip(h) for h in inv.servers)),
        "monitoring_node_ips": list(dict.fromkeys(node_ip(h) for h in inv.hosts)),
        "monitoring_retention_size": retention_size(inv.monitoring.prometheus_storage),
    }
