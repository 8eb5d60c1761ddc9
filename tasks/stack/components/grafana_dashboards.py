"""Our Grafana dashboards, as code (STACK.md section 7: Kubernetes cluster, Node Exporter,
Traefik, Applications).

Each dashboard is a short list of panels with their PromQL, turned here into Grafana's
dashboard JSON and shipped as a ConfigMap labelled ``grafana_dashboard: "1"``, which
Grafana's dashboard sidecar loads (helm-values/kube-prometheus-stack.yaml). Every
expression may only read metrics our exporters export (:mod:`.promql`). Namespaces come
from the inventory, so the Applications dashboard follows ``apps.namespace`` and
``kafka.namespace``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.stack.render import Document

# How errors and the GitOps layout name these generated objects (this module makes them).
SOURCE = "generated:grafana-dashboards"
NAMESPACE = "monitoring"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}  # kube-prometheus-stack's uid
LOKI = {"type": "loki", "uid": "loki"}  # manifests/monitoring/loki/datasource.yaml
LABELS = {
    "app.kubernetes.io/part-of": "k3s-vps-platform",
    "app.kubernetes.io/managed-by": "stack",
    "grafana_dashboard": "1",
}
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries, stat or logs
    width: int = 12
    description: str = ""


@dataclass(frozen=True)
class Variable:
    """A dashboard variable listing the values of ``label`` on ``metric``."""

    name: str
    metric: str
    label: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = field(default_factory=tuple)
    tags: tuple[str, ...] = ("k3s-vps-platform",)


def q(expr: str, legend: str = "") -> tuple[Query, ...]:
    return (Query(expr, legend),)


# --- The four dashboards -----------------------------------------------------------------

def cluster() -> Dashboard:
    """Kubernetes cluster: nodes, pods, resource use and pressure, volumes, targets."""
    return Dashboard("k8s-cluster", "Kubernetes cluster", (
        Panel("Nodes ready", q('sum(kube_node_status_condition{condition="Ready",status="true"})'),
              kind="stat", width=6),
        Panel("Pods running", q('sum(kube_pod_status_phase{phase="Running"})'),
              kind="stat", width=6),
        Panel("Pods pending or failed",
              q('sum(kube_pod_status_phase{phase=~"Pending|Failed|Unknown"}) or vector(0)'),
              kind="stat", width=6),
        Panel("Containers in CrashLoopBackOff",
              q('sum(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"})'
                " or vector(0)"), kind="stat", width=6),
        Panel("CPU usage by namespace", q(
            'sum by (namespace) (rate(container_cpu_usage_seconds_total{container!=""}'
            f"[{RATE}]))", "{{namespace}}"), unit="short",
              description="CPU cores used (cAdvisor)."),
        Panel("Memory working set by namespace", q(
            'sum by (namespace) (container_memory_working_set_bytes{container!=""})',
            "{{namespace}}"), unit="bytes"),
        Panel("Requests against allocatable", (
            Query('sum(kube_pod_container_resource_requests{resource="cpu"})'
                  ' / sum(kube_node_status_allocatable{resource="cpu"})', "CPU"),
            Query('sum(kube_pod_container_resource_requests{resource="memory"})'
                  ' / sum(kube_node_status_allocatable{resource="memory"})', "memory"),
        ), unit="percentunit", description="Share of the nodes' allocatable resources that"
              " pods have requested: above 100% nothing more can be scheduled."),
        Panel("Network by namespace", (
            Query("sum by (namespace) (rate(container_network_receive_bytes_total"
                  f"[{RATE}]))", "{{namespace}} in"),
            Query("-sum by (namespace) (rate(container_network_transmit_bytes_total"
                  f"[{RATE}]))", "{{namespace}} out"),
        ), unit="Bps"),
        Panel("Container restarts (1h) by namespace", q(
            "sum by (namespace) (increase(kube_pod_container_status_restarts_total[1h]))",
            "{{namespace}}")),
        Panel("Unavailable deployment replicas", q(
            "sum by (namespace, deployment) (kube_deployment_status_replicas_unavailable) > 0",
            "{{namespace}}/{{deployment}}")),
        Panel("Volume usage", q(
            "max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes"
            " / kubelet_volume_stats_capacity_bytes)",
            "{{namespace}}/{{persistentvolumeclaim}}"), unit="percentunit",
              description="PVCs: Prometheus 10Gi, Grafana 5Gi, Kafka data (spec section 11)."),
        Panel("Scrape targets up by job", q("sum by (job) (up)", "{{job}}"),
              description="Targets answering, per scrape job (0 for a job: nothing answers)."),
    ))


def node() -> Dashboard:
    """Node Exporter: one node's CPU, memory, disk and network (spec section 6)."""
    sel = 'instance="$instance"'
    return Dashboard("node-exporter", "Node Exporter", (
        Panel("Uptime", q(f"time() - node_boot_time_seconds{{{sel}}}"), unit="s",
              kind="stat", width=6),
        Panel("CPU cores", q(f'count(node_cpu_seconds_total{{{sel},mode="idle"}})'),
              kind="stat", width=6),
        Panel("Memory", q(f"node_memory_MemTotal_bytes{{{sel}}}"), unit="bytes",
              kind="stat", width=6),
        Panel("Root filesystem used", q(
            f'1 - node_filesystem_avail_bytes{{{sel},mountpoint="/"}}'
            f' / node_filesystem_size_bytes{{{sel},mountpoint="/"}}'),
              unit="percentunit", kind="stat", width=6),
        Panel("CPU busy", q(
            f'1 - avg(rate(node_cpu_seconds_total{{{sel},mode="idle"}}[{RATE}]))', "busy"),
              unit="percentunit"),
        Panel("Load average", (
            Query(f"node_load1{{{sel}}}", "1m"),
            Query(f"node_load5{{{sel}}}", "5m"),
            Query(f"node_load15{{{sel}}}", "15m"),
        )),
        Panel("Memory used", q(
            f"1 - node_memory_MemAvailable_bytes{{{sel}}}"
            f" / node_memory_MemTotal_bytes{{{sel}}}", "used"), unit="percentunit"),
        Panel("Disk space used by mount point", q(
            f'1 - node_filesystem_avail_bytes{{{sel},fstype!~"tmpfs|ramfs"}}'
            f' / node_filesystem_size_bytes{{{sel},fstype!~"tmpfs|ramfs"}}',
            "{{mountpoint}}"), unit="percentunit"),
        Panel("Disk throughput", (
            Query(f"sum by (device) (rate(node_disk_read_bytes_total{{{sel}}}[{RATE}]))",
                  "{{device}} read"),
            Query(f"-sum by (device) (rate(node_disk_written_bytes_total{{{sel}}}[{RATE}]))",
                  "{{device}} write"),
        ), unit="Bps"),
        Panel("Disk busy", q(
            f"rate(node_disk_io_time_seconds_total{{{sel}}}[{RATE}])", "{{device}}"),
              unit="percentunit"),
        Panel("Network traffic", (
            Query(f'rate(node_network_receive_bytes_total{{{sel},device!~"lo|veth.*|cni.*|'
                  f'flannel.*"}}[{RATE}])', "{{device}} in"),
            Query(f'-rate(node_network_transmit_bytes_total{{{sel},device!~"lo|veth.*|cni.*|'
                  f'flannel.*"}}[{RATE}])', "{{device}} out"),
        ), unit="Bps", width=24),
    ), variables=(Variable("instance", "node_uname_info", "instance"),))


def traefik() -> Dashboard:
    """Traefik: request rates, response times, errors (spec section 3)."""
    ep = "traefik_entrypoint_requests_total"
    return Dashboard("traefik", "Traefik", (
        Panel("Requests per second", q(f"sum(rate({ep}[{RATE}]))"), unit="reqps",
              kind="stat", width=6),
        Panel("5xx share (5m)", q(
            f'sum(rate({ep}{{code=~"5.."}}[5m])) / sum(rate({ep}[5m]))'),
              unit="percentunit", kind="stat", width=6),
        Panel("Open connections", q("sum(traefik_open_connections)"), kind="stat", width=6),
        Panel("First certificate expiry", q(
            "min(traefik_tls_certs_not_after) - time()"), unit="s", kind="stat", width=6,
              description="Time left on the certificate that expires first."),
        Panel("Requests by entry point", q(
            f"sum by (entrypoint) (rate({ep}[{RATE}]))", "{{entrypoint}}"), unit="reqps"),
        Panel("Responses by status code", q(
            f"sum by (code) (rate({ep}[{RATE}]))", "{{code}}"), unit="reqps"),
        Panel("Response time by entry point", tuple(
            Query(f"histogram_quantile({quantile}, sum by (le, entrypoint) (rate("
                  f"traefik_entrypoint_request_duration_seconds_bucket[{RATE}])))",
                  f"{{{{entrypoint}}}} p{round(float(quantile) * 100)}")
            for quantile in ("0.5", "0.95", "0.99")), unit="s"),
        Panel("Requests by service", q(
            f"sum by (service) (rate(traefik_service_requests_total[{RATE}]))",
            "{{service}}"), unit="reqps"),
        Panel("Response time p95 by service", q(
            "histogram_quantile(0.95, sum by (le, service) (rate("
            f"traefik_service_request_duration_seconds_bucket[{RATE}])))", "{{service}}"),
              unit="s"),
        Panel("Configuration reloads (1h)", q(
            "sum(increase(traefik_config_reloads_total[1h]))", "reloads")),
    ))


def applications(ctx: Mapping[str, Any]) -> Dashboard:
    """Applications: request rate, latency, errors, restarts, Kafka consumer lag (spec 9).

    HTTP figures are Traefik's, per Kubernetes service of the apps' namespace (Traefik
    names them ``<namespace>-<service>-<port>@kubernetes``); pod figures come from
    kube-state-metrics and cAdvisor; the lag from the Kafka Exporter.
    """
    ns = ctx["apps"]["namespace"]
    kafka_ns = ctx["kafka"]["namespace"]
    svc = f'service=~"{ns}-.+"'
    pods = f'namespace="{ns}"'
    requests = "traefik_service_requests_total"
    panels = [
        Panel("Request rate", q(
            f"sum by (service) (rate({requests}{{{svc}}}[{RATE}]))", "{{service}}"),
              unit="reqps"),
        Panel("Latency p95", q(
            "histogram_quantile(0.95, sum by (le, service) (rate("
            f"traefik_service_request_duration_seconds_bucket{{{svc}}}[{RATE}])))",
            "{{service}}"), unit="s"),
        Panel("Errors (5xx share)", q(
            f'sum by (service) (rate({requests}{{{svc},code=~"5.."}}[{RATE}]))'
            f" / sum by (service) (rate({requests}{{{svc}}}[{RATE}]))", "{{service}}"),
              unit="percentunit"),
        Panel("Restarts (1h)", q(
            f"sum by (pod) (increase(kube_pod_container_status_restarts_total{{{pods}}}[1h]))",
            "{{pod}}"), description="Container restarts per pod over the last hour."),
        Panel("Waiting containers (CrashLoopBackOff, ImagePullBackOff...)", q(
            f"sum by (pod, reason) (kube_pod_container_status_waiting_reason{{{pods}}}) > 0",
            "{{pod}}: {{reason}}")),
        Panel("Last termination reason", q(
            "sum by (pod, reason) (kube_pod_container_status_last_terminated_reason"
            f"{{{pods}}}) > 0", "{{pod}}: {{reason}}"),
              description="Why each container last stopped (OOMKilled, Error...)."),
        Panel("Replicas available / desired", (
            Query(f"sum by (deployment) (kube_deployment_status_replicas_available{{{pods}}})",
                  "{{deployment}} available"),
            Query(f"sum by (deployment) (kube_deployment_spec_replicas{{{pods}}})",
                  "{{deployment}} desired"),
        )),
        Panel("Kafka consumer lag", q(
            "sum by (consumergroup, topic) (kafka_consumergroup_lag"
            f'{{namespace="{kafka_ns}"}})', "{{consumergroup}} / {{topic}}"),
              description="Messages not yet consumed, per consumer group and topic."),
        Panel("CPU by pod", q(
            f'sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods},container!=""}}'
            f"[{RATE}]))", "{{pod}}")),
        Panel("Memory by pod", q(
            f'sum by (pod) (container_memory_working_set_bytes{{{pods},container!=""}})',
            "{{pod}}"), unit="bytes"),
    ]
    if ctx["monitoring"]["loki"]:
        panels.append(Panel("Logs", q(f'{{namespace="{ns}"}}'), kind="logs", width=24))
    return Dashboard("applications", "Applications", tuple(panels))


def dashboards(ctx: Mapping[str, Any]) -> list[Dashboard]:
    return [cluster(), node(), traefik(), applications(ctx)]


# --- Grafana's JSON model ----------------------------------------------------------------

def _target(query: Query, ref: str, panel: Panel) -> dict[str, Any]:
    datasource = LOKI if panel.kind == "logs" else PROMETHEUS
    target: dict[str, Any] = {"refId": ref, "datasource": datasource, "expr": query.expr}
    if query.legend:
        target["legendFormat"] = query.legend
    return target


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    if panel.kind == "logs":
        return {"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending"}
    return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"}}


def panel_json(panel: Panel, number: int, pos: dict[str, int]) -> dict[str, Any]:
    refs = "ABCDEFGHIJ"
    return {
        "id": number,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": LOKI if panel.kind == "logs" else PROMETHEUS,
        "gridPos": pos,
        "targets": [_target(query, refs[i], panel) for i, query in enumerate(panel.queries)],
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": _options(panel),
    }


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    """Left to right, top to bottom on Grafana's 24-column grid."""
    out, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        height = 4 if panel.kind == "stat" else 8
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        out.append({"h": height, "w": panel.width, "x": x, "y": y})
        x, row_height = x + panel.width, max(row_height, height)
    return out


def _variable(var: Variable) -> dict[str, Any]:
    query = f"label_values({var.metric}, {var.label})"
    return {
        "name": var.name, "label": var.name, "type": "query", "datasource": PROMETHEUS,
        "query": {"query": query, "refId": var.name}, "definition": query,
        "refresh": 2, "sort": 1, "includeAll": False, "multi": False,
    }


def dashboard_json(dash: Dashboard) -> dict[str, Any]:
    return {
        "uid": dash.uid,
        "title": dash.title,
        "tags": list(dash.tags),
        "editable": False,  # provisioned from the repository: edit the code, not the UI
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [_variable(v) for v in dash.variables]},
        "panels": [panel_json(panel, i + 1, pos) for i, (panel, pos)
                   in enumerate(zip(dash.panels, _layout(dash.panels), strict=True))],
    }


def configmap(dash: Dashboard) -> Document:
    """The ConfigMap Grafana's sidecar loads ``dash`` from."""
    return Document(SOURCE, {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"grafana-dashboard-{dash.uid}", "namespace": NAMESPACE,
                     "labels": dict(LABELS)},
        "data": {f"{dash.uid}.json": json.dumps(dashboard_json(dash), indent=2,
                                                sort_keys=True)},
    })


def documents(ctx: Mapping[str, Any]) -> list[Document]:
    return [configmap(dash) for dash in dashboards(ctx)]
