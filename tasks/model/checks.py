"""Cross-checks: what no single field's rule can see (several fields, files on disk).

Run by :func:`tasks.model.load.load` once every field has passed its own rule, so the
values here are well-formed; each problem is one ``path: message`` line.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from tasks.model import local_files
from tasks.model.fields import show
from tasks.model.model import Inventory

if TYPE_CHECKING:
    from tasks.model.load import Loaded

# Ports of the node that the world must never reach (open_tcp opens to everyone).
CLUSTER_PORTS = {
    10250: "the kubelet API", 2379: "etcd (clients)", 2380: "etcd (peers)",
    10257: "the controller manager", 10259: "the scheduler", 10249: "kube-proxy (metrics)",
    10256: "kube-proxy (health check)", 9100: "node-exporter",
}


def semantic_errors(loaded: Loaded, require_key_files: bool = True) -> list[str]:
    inv = loaded.data
    errors = _host_errors(inv)
    if require_key_files:  # the task will connect: these files must be usable
        for i, host in enumerate(inv.hosts):
            problem = local_files.key_file_error(loaded.key_file(host))
            if problem:
                errors.append(f"hosts[{i}].key_file: {problem}")
        problem = local_files.known_hosts_error(loaded.known_hosts)
        if problem:
            errors.append(f"host.ssh.known_hosts: {problem}")
    return errors + _network_errors(inv) + _port_errors(inv) + _namespace_errors(inv)


def _host_errors(inv: Inventory) -> list[str]:
    errors: list[str] = []
    if not inv.hosts:
        errors.append("hosts: at least one host is required")
    if not inv.operators:
        errors.append("operators: at least one CIDR is required (your own address, e.g."
                      " 203.0.113.7/32), or the firewall would lock you out of the API")
    seen: dict[str, int] = {}
    for i, host in enumerate(inv.hosts):
        if host.name in seen:
            errors.append(f"hosts[{i}].name: duplicate of hosts[{seen[host.name]}]"
                          f" ({show(host.name)})")
        seen.setdefault(host.name, i)
    if inv.hosts and not inv.servers:
        errors.append("hosts: at least one host needs role: server")
    return errors


def _network_errors(inv: Inventory) -> list[str]:
    errors: list[str] = []
    pods = ipaddress.ip_network(inv.k3s.pod_cidr)
    services = ipaddress.ip_network(inv.k3s.service_cidr)
    if pods.overlaps(services):
        errors.append(f"k3s.service_cidr: overlaps k3s.pod_cidr ({pods})")
    http, https = inv.k3s.traefik_http_nodeport, inv.k3s.traefik_https_nodeport
    if http == https:
        errors.append(f"k3s.traefik_https_nodeport: same as traefik_http_nodeport ({http})")
    return errors


def _port_errors(inv: Inventory) -> list[str]:
    errors: list[str] = []
    closed = {**CLUSTER_PORTS, inv.host.firewall.api_port: "the Kubernetes API"
              " (host.firewall.api_port), open only to operators and nodes"}
    for i, port in enumerate(inv.host.firewall.open_tcp):
        where = f"host.firewall.open_tcp[{i}]: {port}"
        if port == inv.host.ssh.port:
            errors.append(f"{where} is SSH (host.ssh.port), which has its own rules; opening"
                          " it here would bypass the rate limit and the operator allow-list")
        elif port in closed:
            errors.append(f"{where} is {closed[port]}; it must never be open to the world")
    return errors


def _system_namespace(name: str) -> bool:
    return name == "default" or name.startswith("kube-")


def _namespace_errors(inv: Inventory) -> list[str]:
    errors: list[str] = []
    dupes = sorted({t for t in inv.kafka.topics if inv.kafka.topics.count(t) > 1})
    if dupes:
        errors.append(f"kafka.topics: duplicate topic {show(dupes[0])}")
    apps, kafka = inv.apps.namespace, inv.kafka.namespace
    taken = {"cert-manager": "cert-manager", "flux-system": "Flux",
             "monitoring": "monitoring", kafka: "kafka"}
    if _system_namespace(apps):
        errors.append(f"apps.namespace: {show(apps)} is a Kubernetes system namespace; give"
                      " the applications their own")
    elif apps in taken:
        errors.append(f"apps.namespace: {show(apps)} is already used by {taken[apps]}; give"
                      " the applications their own")
    if _system_namespace(kafka) or kafka in ("cert-manager", "flux-system", "monitoring"):
        errors.append(f"kafka.namespace: {show(kafka)} is a system namespace; give Kafka its"
                      " own")
    return errors
