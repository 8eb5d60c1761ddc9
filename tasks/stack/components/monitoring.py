"""Monitoring (STACK.md sections 6 and 7): kube-prometheus-stack, our dashboards, Loki.

The bundle: namespace ``monitoring`` and the ServiceMonitors of Traefik and cert-manager
(manifests/monitoring/; their CRDs come with kube-prometheus-stack), the dashboards as
ConfigMaps (:mod:`.grafana_dashboards`), and the chart releases: kube-prometheus-stack
always; Loki and Alloy (its log shipper) with Loki's Grafana data source only when the
inventory says ``monitoring.loki: true``. ``monitoring.install`` (:mod:`tasks.monitoring`)
applies the documents and installs the releases; :func:`checks` holds what a schema
cannot see.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from tasks.stack import scrape
from tasks.stack.components import grafana_dashboards, promql
from tasks.stack.render import Bundle, Document, Release, at, manifest_documents, values_file

NAME = "monitoring"
NAMESPACE = "monitoring"

PROMETHEUS_COMMUNITY = ("prometheus-community", "https://prometheus-community.github.io/helm-charts")
# The OSS Loki chart's home since March 2026 (grafana/loki's own chart is now for GEL).
GRAFANA_COMMUNITY = ("grafana-community", "https://grafana-community.github.io/helm-charts")
GRAFANA = ("grafana", "https://grafana.github.io/helm-charts")

# (release, chart, repository, inventory version key); the values file is
# helm-values/<release>.yaml.
KUBE_PROMETHEUS_STACK = ("kube-prometheus-stack", "kube-prometheus-stack",
                         PROMETHEUS_COMMUNITY, "kube_prometheus_stack")
LOKI = ("loki", "loki", GRAFANA_COMMUNITY, "loki")
ALLOY = ("alloy", "alloy", GRAFANA, "alloy")

# The Secret Grafana's admin comes from (SOPS-managed, templated in secrets/).
GRAFANA_ADMIN_SECRET = {"name": "grafana-admin", "userKey": "admin-user",
                        "passwordKey": "admin-password"}
# Passwords that must never appear: the original setup's and the chart's old default.
DEFAULT_PASSWORDS = ("admin123", "prom-operator")
SELECTORS_OPEN = ("serviceMonitorSelectorNilUsesHelmValues", "podMonitorSelectorNilUsesHelmValues",
                  "ruleSelectorNilUsesHelmValues", "probeSelectorNilUsesHelmValues")
# What K3s serves the in-process components' metrics on: (values key, port, https).
K3S_COMPONENTS = (("kubeControllerManager", 10257, True), ("kubeScheduler", 10259, True),
                  ("kubeProxy", 10249, False))
# Prometheus's duration syntax (units in this order), as the Prometheus CRD checks it.
_PROMETHEUS_DURATION = re.compile(r"0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?"
                                  r"([0-9]+s)?([0-9]+ms)?")


def release(spec: tuple[str, str, tuple[str, str], str], ctx: Mapping[str, Any]) -> Release:
    name, chart, (repo_name, repo_url), version_key = spec
    source, values = values_file(name, ctx)
    return Release(name=name, namespace=NAMESPACE, repo_name=repo_name, repo_url=repo_url,
                   chart=chart, version=str(ctx["versions"][version_key]),
                   values_source=source, values=values)


def render(ctx: Mapping[str, Any]) -> Bundle:
    docs = manifest_documents("monitoring", ctx) + grafana_dashboards.documents(ctx)
    releases = [release(KUBE_PROMETHEUS_STACK, ctx)]
    if ctx["monitoring"]["loki"]:
        docs += manifest_documents("monitoring/loki", ctx)
        releases += [release(LOKI, ctx), release(ALLOY, ctx)]
    return Bundle(documents=docs, releases=releases)


# --- checks ------------------------------------------------------------------------------


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in ``value`` (keys too) with its dotted path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub, str(key)
            yield from strings(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def _passwords(label: str, value: Any) -> list[str]:
    out = []
    for path, text in strings(value):
        for password in DEFAULT_PASSWORDS:
            if password in text:
                out.append(f"{label}: {path}: default password {password!r} is forbidden")
        if path.endswith("adminPassword"):
            out.append(f"{label}: {path}: Grafana's password comes from the Secret"
                       f" {GRAFANA_ADMIN_SECRET['name']}, never from values")
    return out


def _k3s_endpoints(label: str, values: Mapping[str, Any], ctx: Mapping[str, Any]) -> list[str]:
    out = []
    expected = {"kubeControllerManager": ctx["derived"]["monitoring_server_ips"],
                "kubeScheduler": ctx["derived"]["monitoring_server_ips"],
                "kubeProxy": ctx["derived"]["monitoring_node_ips"]}
    for key, port, https in K3S_COMPONENTS:
        endpoints = at(values, f"{key}.endpoints") or []
        if endpoints != expected[key]:
            out.append(f"{label}: {key}.endpoints: must be the nodes' IPs {expected[key]}")
        for i, address in enumerate(endpoints):
            if not scrape.is_node_ip(str(address)):
                out.append(f"{label}: {key}.endpoints[{i}]: {address!r} is not an IP pods can"
                           " reach the node on: set hosts[].internal_address in the inventory")
        if at(values, f"{key}.service.port") != port:
            out.append(f"{label}: {key}.service.port: K3s serves it on {port}")
        if bool(at(values, f"{key}.serviceMonitor.https")) != https:
            out.append(f"{label}: {key}.serviceMonitor.https: must be {str(https).lower()}")
    return out


def _kube_prometheus_stack(rel: Release, ctx: Mapping[str, Any]) -> list[str]:
    label = f"{rel.values_source}: Release {rel.name}"
    values, out = rel.values, []
    spec = at(values, "prometheus.prometheusSpec") or {}
    retention = str(spec.get("retention", ""))
    if not _PROMETHEUS_DURATION.fullmatch(retention):
        out.append(f"{label}: prometheus.prometheusSpec.retention: {retention!r} is not a"
                   " Prometheus duration (units in the order y w d h m s ms)")
    for key in SELECTORS_OPEN:
        if spec.get(key) is not False:
            out.append(f"{label}: prometheus.prometheusSpec.{key}: must be false (selectors"
                       " open to every namespace)")
    if at(values, "kubeEtcd.enabled") is not False:
        out.append(f"{label}: kubeEtcd.enabled: must be false (K3s on SQLite has no etcd)")
    admin = at(values, "grafana.admin") or {}
    for key, expected in GRAFANA_ADMIN_SECRET.items():
        field = "existingSecret" if key == "name" else key
        if admin.get(field) != expected:
            out.append(f"{label}: grafana.admin.{field}: must be {expected!r}")
    return out + _k3s_endpoints(label, values, ctx)


def _dashboard_problems(doc: Document) -> list[str]:
    labels = (doc.obj.get("metadata") or {}).get("labels") or {}
    if labels.get("grafana_dashboard") != "1":
        return [f"{doc.label}: metadata.labels.grafana_dashboard: must be \"1\""]
    out = []
    for key, text in (doc.obj.get("data") or {}).items():
        try:
            dashboard = json.loads(text)
        except json.JSONDecodeError as exc:
            out.append(f"{doc.label}: data.{key}: invalid JSON: {exc}")
            continue
        for panel in dashboard.get("panels", []):
            if panel.get("type") == "logs":
                continue
            for target in panel.get("targets", []):
                out += [f"{doc.label}: data.{key}: panel {panel.get('title')!r}: {problem}"
                        for problem in promql.problems(target.get("expr", ""))]
    return out


def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """Spec rules on the rendered bundle: selectors, etcd, K3s endpoints, Grafana's admin
    Secret, no default password, dashboards' JSON and metrics, Loki only when asked."""
    out = []
    for rel in bundle.releases:
        out += _passwords(f"{rel.values_source}: Release {rel.name}", rel.values)
        if rel.name == KUBE_PROMETHEUS_STACK[0]:
            out += _kube_prometheus_stack(rel, ctx)
    for doc in bundle.documents:
        out += _passwords(doc.label, doc.obj)
        if doc.kind == "ConfigMap" and doc.name.startswith("grafana-dashboard-"):
            out += _dashboard_problems(doc)
    names = {rel.name for rel in bundle.releases}
    if KUBE_PROMETHEUS_STACK[0] not in names:
        out.append(f"helm-values/{KUBE_PROMETHEUS_STACK[0]}.yaml: Release"
                   f" {KUBE_PROMETHEUS_STACK[0]}: missing from the bundle")
    loki = bool(ctx["monitoring"]["loki"])
    if (LOKI[0] in names) != loki:
        out.append(f"helm-values/{LOKI[0]}.yaml: Release {LOKI[0]}: installed only when"
                   f" monitoring.loki is true (it is {str(loki).lower()})")
    return out
