"""Traefik (spec §3): the HelmChartConfig that tunes the chart K3s bundles.

K3s installs Traefik itself (HelmChart kube-system/traefik); this component only applies
the HelmChartConfig of the same name, whose ``valuesContent`` K3s merges over its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from tasks.stack.render import Bundle, Document, at, manifest_documents

NAME = "traefik"
# The chart K3s v1.33.3+k3s1 bundles (its value names are the ones used).
BUNDLED_CHART = "traefik-34.2.1+up34.2.0"
# K3s releases whose bundled Traefik chart the values were checked against. Another K3s
# may bundle another chart: check its value names, then add it here.
VERIFIED_K3S = {"v1.33.3+k3s1": BUNDLED_CHART}


def render(ctx: Mapping[str, Any]) -> Bundle:
    return Bundle(documents=manifest_documents("traefik", ctx))


def values(doc: Document) -> dict[str, Any]:
    """The HelmChartConfig's ``spec.valuesContent`` parsed (empty when absent)."""
    text = (doc.obj.get("spec") or {}).get("valuesContent") or ""
    data = yaml.safe_load(text) if isinstance(text, str) else None
    return data if isinstance(data, dict) else {}



def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """NodePorts from the inventory, redirect, dashboard off, metrics on."""
    configs = [d for d in bundle.documents if d.kind == "HelmChartConfig"]
    target = [d for d in configs if d.name == "traefik" and d.namespace == "kube-system"]
    if not target:
        return ["manifests/traefik: HelmChartConfig traefik: missing (must be"
                " kube-system/traefik to reach K3s's bundled chart)"]
    doc = target[0]
    try:
        vals = values(doc)
    except yaml.YAMLError as exc:
        return [f"{doc.label}: spec.valuesContent: invalid YAML: {exc}"]
    expected: dict[str, Any] = {
        "ports.web.nodePort": ctx["k3s"]["traefik_http_nodeport"],
        "ports.websecure.nodePort": ctx["k3s"]["traefik_https_nodeport"],
        "ports.web.redirections.entryPoint.to": "websecure",
        "ports.web.redirections.entryPoint.scheme": "https",
        "ports.web.redirections.entryPoint.permanent": True,
        "ports.traefik.expose.default": False,
        "ingressRoute.dashboard.enabled": False,
        "metrics.prometheus.entryPoint": "metrics",
        "metrics.prometheus.serviceMonitor.enabled": False,
    }
    errors = []
    k3s_version = ctx["versions"]["k3s"]
    if k3s_version not in VERIFIED_K3S:
        errors.append(f"{doc.label}: spec.valuesContent: written for the Traefik chart of"
                      f" K3s {', '.join(VERIFIED_K3S)}; check its value names against the"
                      f" chart K3s {k3s_version} bundles, then add it to VERIFIED_K3S in"
                      " tasks/stack/components/traefik.py")
    for path, want in expected.items():
        got = at(vals, path)
        if got != want or type(got) is not type(want):
            errors.append(f"{doc.label}: spec.valuesContent.{path}: must be {want!r},"
                          f" got {got!r}")
    # K3s's own values announce another port: ours must override it with the real one.
    port = at(vals, "ports.metrics.port")
    annotations = at(vals, "deployment.podAnnotations") or {}
    for key, want in (("prometheus.io/scrape", "true"), ("prometheus.io/port", str(port))):
        if port is None or annotations.get(key) != want:
            errors.append(f"{doc.label}: spec.valuesContent.deployment.podAnnotations"
                          f".{key}: must be {want!r} (ports.metrics.port {port!r}), got"
                          f" {annotations.get(key)!r}")
    return errors
