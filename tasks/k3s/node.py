"""Which K3s node each inventory host is, and the files that make it one.

One server: embedded SQLite (spec §2). Several servers: the first starts embedded etcd
(``cluster-init``) and the others join it; agents always join the first server. Nodes
reach it at its internal address (or its SSH address).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tasks.model.model import Host, Inventory
from tasks.stack.components import k3s as component
from tasks.stack.render import HostFile

UNIT_DIR = "/etc/systemd/system"


@dataclass(frozen=True)
class Node:
    host: Host
    role: Literal["server", "agent"]
    first: bool  # the first server: the control plane the others join
    cluster_init: bool
    join: str | None  # the first server's API, for the nodes that join it

    @property
    def service(self) -> str:
        return "k3s" if self.role == "server" else "k3s-agent"

    @property
    def unit_path(self) -> str:
        return f"{UNIT_DIR}/{self.service}.service"


def nodes(inv: Inventory) -> dict[str, Node]:
    servers = inv.servers
    first = servers[0]
    url = component.join_url(first.internal_address or first.address)
    several = len(servers) > 1
    out = {}
    for host in inv.hosts:
        is_first = host.name == first.name
        out[host.name] = Node(host, host.role, is_first, several and is_first,
                              None if is_first else url)
    return out


def host_files(ctx: Mapping[str, Any], node: Node) -> list[HostFile]:
    if node.role == "agent":
        assert node.join is not None
        return component.agent_files(ctx, node.host.name, node.join)
    return component.server_files(ctx, node.host.name, cluster_init=node.cluster_init,
                                  join=node.join)


def unit(node: Node) -> str:
    """Our systemd unit for K3s (the same shape as upstream's: notify, process kill mode,
    unlimited tasks; kernel modules loaded first)."""
    kind = "server" if node.role == "server" else "agent"
    return "\n".join([
        "# Managed by k3s-vps-platform (inv k3s.install): local edits are overwritten.",
        "[Unit]",
        f"Description=Lightweight Kubernetes ({kind})",
        "Documentation=https://docs.k3s.io",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "KillMode=process",
        "Delegate=yes",
        "LimitNOFILE=1048576",
        "LimitNPROC=infinity",
        "LimitCORE=infinity",
        "TasksMax=infinity",
        "TimeoutStartSec=0",
        "Restart=always",
        "RestartSec=5s",
        "ExecStartPre=-/sbin/modprobe br_netfilter",
        "ExecStartPre=-/sbin/modprobe overlay",
        f"ExecStart=/usr/local/bin/k3s {kind}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])
