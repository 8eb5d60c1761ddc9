"""Which metrics a PromQL expression reads, and which metrics our exporters really export.

The dashboards (tasks/stack/components/grafana_dashboards.py) may only query metrics
listed in :data:`KNOWN_METRICS`, each with the exporter that produces it in this stack.
The names were checked against each exporter's documentation or source at the versions
the stack pins (kube-state-metrics 2.19 of chart 85.4.0, node_exporter, cAdvisor via the
kubelet, Traefik v3, the Kafka Exporter Strimzi runs); metrics the chart's cAdvisor
relabelling drops (``container_spec_*``, ``container_cpu_user_seconds_total``...) are
deliberately absent.
"""

from __future__ import annotations

import re

KUBE_STATE_METRICS = "kube-state-metrics"
NODE_EXPORTER = "node-exporter"
CADVISOR = "cAdvisor (kubelet /metrics/cadvisor)"
KUBELET = "kubelet /metrics"
TRAEFIK = "Traefik v3"
KAFKA_EXPORTER = "Kafka Exporter (Strimzi)"
PROMETHEUS = "Prometheus (synthetic)"

KNOWN_METRICS: dict[str, str] = {
    # kube-state-metrics: docs/metrics/** of kubernetes/kube-state-metrics.
    "kube_node_info": KUBE_STATE_METRICS,
    "kube_node_status_condition": KUBE_STATE_METRICS,
    "kube_node_status_allocatable": KUBE_STATE_METRICS,
    "kube_pod_status_phase": KUBE_STATE_METRICS,
    "kube_pod_status_ready": KUBE_STATE_METRICS,
    "kube_pod_container_status_restarts_total": KUBE_STATE_METRICS,
    "kube_pod_container_status_waiting_reason": KUBE_STATE_METRICS,
    "kube_pod_container_status_last_terminated_reason": KUBE_STATE_METRICS,
    "kube_pod_container_resource_requests": KUBE_STATE_METRICS,
    "kube_pod_container_resource_limits": KUBE_STATE_METRICS,
    "kube_deployment_spec_replicas": KUBE_STATE_METRICS,
    "kube_deployment_status_replicas_available": KUBE_STATE_METRICS,
    "kube_deployment_status_replicas_unavailable": KUBE_STATE_METRICS,
    "kube_horizontalpodautoscaler_status_current_replicas": KUBE_STATE_METRICS,
    "kube_horizontalpodautoscaler_spec_max_replicas": KUBE_STATE_METRICS,
    "kube_namespace_status_phase": KUBE_STATE_METRICS,
    # node_exporter (default collectors: cpu, meminfo, filesystem, diskstats, netdev,
    # loadavg, stat, uname).
    "node_cpu_seconds_total": NODE_EXPORTER,
    "node_load1": NODE_EXPORTER,
    "node_load5": NODE_EXPORTER,
    "node_load15": NODE_EXPORTER,
    "node_memory_MemTotal_bytes": NODE_EXPORTER,
    "node_memory_MemAvailable_bytes": NODE_EXPORTER,
    "node_filesystem_avail_bytes": NODE_EXPORTER,
    "node_filesystem_size_bytes": NODE_EXPORTER,
    "node_disk_read_bytes_total": NODE_EXPORTER,
    "node_disk_written_bytes_total": NODE_EXPORTER,
    "node_disk_io_time_seconds_total": NODE_EXPORTER,
    "node_network_receive_bytes_total": NODE_EXPORTER,
    "node_network_transmit_bytes_total": NODE_EXPORTER,
    "node_boot_time_seconds": NODE_EXPORTER,
    "node_uname_info": NODE_EXPORTER,
    # cAdvisor, as the kubelet serves it.
    "container_cpu_usage_seconds_total": CADVISOR,
    "container_memory_working_set_bytes": CADVISOR,
    "container_network_receive_bytes_total": CADVISOR,
    "container_network_transmit_bytes_total": CADVISOR,
    # The kubelet's own /metrics (PVC usage).
    "kubelet_volume_stats_used_bytes": KUBELET,
    "kubelet_volume_stats_capacity_bytes": KUBELET,
    # Traefik v3 Prometheus metrics (entry points and services are labelled by default).
    "traefik_entrypoint_requests_total": TRAEFIK,
    "traefik_entrypoint_request_duration_seconds_bucket": TRAEFIK,
    "traefik_service_requests_total": TRAEFIK,
    "traefik_service_request_duration_seconds_bucket": TRAEFIK,
    "traefik_open_connections": TRAEFIK,
    "traefik_tls_certs_not_after": TRAEFIK,
    "traefik_config_reloads_total": TRAEFIK,
    # Kafka Exporter (danielqsj/kafka_exporter, which Strimzi deploys).
    "kafka_consumergroup_lag": KAFKA_EXPORTER,
    "kafka_consumergroup_members": KAFKA_EXPORTER,
    "kafka_topic_partition_current_offset": KAFKA_EXPORTER,
    # Prometheus itself: one sample per target.
    "up": PROMETHEUS,
}

# PromQL words that look like identifiers but are not metric names.
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "atan2", "start", "end",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER_SUFFIX = re.compile(r"\b[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?[a-z]*\b")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (function names, labels, keywords removed)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    text = _NUMBER_SUFFIX.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        rest = text[match.end():].lstrip()
        if rest.startswith("("):
            continue  # a function call
        if match[0].lower() not in _KEYWORDS:
            names.add(match[0])
    return names


def balanced(expr: str) -> bool:
    """Parentheses, braces and brackets open and close in order (strings ignored)."""
    pairs = {")": "(", "}": "{", "]": "["}
    stack: list[str] = []
    for char in _STRING.sub('""', expr):
        if char in "({[":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def problems(expr: str) -> list[str]:
    """What is wrong with ``expr``: unbalanced brackets, metrics nobody exports."""
    out = [] if balanced(expr) else ["unbalanced brackets"]
    unknown = sorted(metric_names(expr) - KNOWN_METRICS.keys())
    if unknown:
        out.append(f"metric(s) no exporter of this stack provides: {', '.join(unknown)}")
    if not metric_names(expr):
        out.append("selects no metric")
    return out
