"""Traefik's HelmChartConfig: NodePorts, redirect, dashboard, metrics; broken ones caught."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from platform_ctx import variant

from tasks.stack.components import traefik
from tasks.stack.render import Bundle, Document

CTX = variant()


def config(ctx: dict[str, Any] | None = None) -> Document:
    [doc] = traefik.render(ctx or CTX).documents
    return doc


def test_helmchartconfig_targets_the_bundled_chart() -> None:
    doc = config()
    assert (doc.api_version, doc.kind) == ("helm.cattle.io/v1", "HelmChartConfig")
    assert (doc.namespace, doc.name) == ("kube-system", "traefik")
    assert doc.obj["metadata"]["labels"] == {"app.kubernetes.io/part-of": "k3s-vps-platform",
                                             "app.kubernetes.io/managed-by": "stack"}
    assert traefik.BUNDLED_CHART == "traefik-34.2.1+up34.2.0"


def test_values_have_the_spec_numbers() -> None:
    vals = traefik.values(config())
    assert vals["service"]["type"] == "LoadBalancer"
    assert vals["ports"]["web"]["nodePort"] == 32170
    assert vals["ports"]["websecure"]["nodePort"] == 31931
    assert vals["ports"]["web"]["redirections"] == {
        "entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}}
    assert vals["ingressRoute"]["dashboard"]["enabled"] is False
    assert vals["ports"]["traefik"]["expose"]["default"] is False  # 8080 never exposed
    prom = vals["metrics"]["prometheus"]
    assert prom["entryPoint"] == "metrics" and prom["service"]["enabled"] is True
    assert prom["serviceMonitor"]["enabled"] is False
    assert vals["ports"]["metrics"]["port"] == 9100
    assert vals["deployment"]["podAnnotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/path": "/metrics",
        "prometheus.io/port": "9100"}


def test_nodeports_follow_the_inventory() -> None:
    ctx = variant(k3s={"traefik_http_nodeport": 30080, "traefik_https_nodeport": 30443})
    vals = traefik.values(config(ctx))
    assert (vals["ports"]["web"]["nodePort"], vals["ports"]["websecure"]["nodePort"]) == (
        30080, 30443)
    assert traefik.checks(traefik.render(ctx), ctx) == []


def test_another_k3s_release_asks_for_a_check_of_the_value_names() -> None:
    ctx = variant(versions={"k3s": "v1.34.1+k3s1"})
    assert traefik.checks(traefik.render(ctx), ctx) == [
        "manifests/traefik/helmchartconfig.yaml: HelmChartConfig traefik: spec.valuesContent:"
        " written for the Traefik chart of K3s v1.33.3+k3s1; check its value names against"
        " the chart K3s v1.34.1+k3s1 bundles, then add it to VERIFIED_K3S in"
        " tasks/stack/components/traefik.py"]
    assert traefik.VERIFIED_K3S == {"v1.33.3+k3s1": "traefik-34.2.1+up34.2.0"}


def test_default_render_passes_the_checks() -> None:
    assert traefik.checks(traefik.render(CTX), CTX) == []


LABEL = "manifests/traefik/helmchartconfig.yaml: HelmChartConfig traefik"


def with_values(change: Any) -> list[str]:
    doc = config()
    vals = traefik.values(doc)
    change(vals)
    obj = copy.deepcopy(doc.obj)
    obj["spec"]["valuesContent"] = yaml.safe_dump(vals)
    return traefik.checks(Bundle(documents=[Document(doc.source, obj)]), CTX)


@pytest.mark.parametrize(("change", "error"), [
    (lambda v: v["ports"]["web"].__setitem__("nodePort", 30080),
     f"{LABEL}: spec.valuesContent.ports.web.nodePort: must be 32170, got 30080"),
    (lambda v: v["ports"]["websecure"].pop("nodePort"),
     f"{LABEL}: spec.valuesContent.ports.websecure.nodePort: must be 31931, got None"),
    (lambda v: v["ports"]["web"].pop("redirections"),
     f"{LABEL}: spec.valuesContent.ports.web.redirections.entryPoint.to: must be"
     " 'websecure', got None"),
    (lambda v: v["ingressRoute"]["dashboard"].__setitem__("enabled", True),
     f"{LABEL}: spec.valuesContent.ingressRoute.dashboard.enabled: must be False, got True"),
    (lambda v: v["ports"]["traefik"]["expose"].__setitem__("default", True),
     f"{LABEL}: spec.valuesContent.ports.traefik.expose.default: must be False, got True"),
    (lambda v: v["metrics"].pop("prometheus"),
     f"{LABEL}: spec.valuesContent.metrics.prometheus.entryPoint: must be 'metrics', got None"),
    (lambda v: v["deployment"]["podAnnotations"].__setitem__("prometheus.io/port", "8082"),
     f"{LABEL}: spec.valuesContent.deployment.podAnnotations.prometheus.io/port: must be"
     " '9100' (ports.metrics.port 9100), got '8082'"),
])
def test_broken_values_are_caught(change: Any, error: str) -> None:
    assert error in with_values(change)


def test_missing_or_misplaced_config_is_caught() -> None:
    doc = config()
    obj = copy.deepcopy(doc.obj)
    obj["metadata"]["namespace"] = "traefik"
    errors = traefik.checks(Bundle(documents=[Document(doc.source, obj)]), CTX)
    assert errors == ["manifests/traefik: HelmChartConfig traefik: missing (must be"
                      " kube-system/traefik to reach K3s's bundled chart)"]
    obj = copy.deepcopy(doc.obj)
    obj["spec"]["valuesContent"] = "ports: [unclosed"
    [error] = traefik.checks(Bundle(documents=[Document(doc.source, obj)]), CTX)
    assert error.startswith(f"{LABEL}: spec.valuesContent: invalid YAML")
