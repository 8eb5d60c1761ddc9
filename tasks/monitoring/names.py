"""The names kube-prometheus-stack 85.4.0 gives what monitoring.install checks, from our
values (checked against the chart's templates and a ``helm template`` of it):

- ``kube-prometheus-stack.fullname`` (templates/_helpers.tpl): ``fullnameOverride``, else
  the release name when it contains the chart name, else ``<release>-<chart>``; cut to
  26 characters. Release ``kube-prometheus-stack``: ``kube-prometheus-stack``.
- Prometheus: the custom resource ``<fullname>-prometheus`` and its Service of the same
  name (templates/prometheus/service.yaml), port ``prometheus.prometheusSpec.portName``
  (``http-web``, 9090). The operator's StatefulSet ``prometheus-<cr>`` claims its volume
  from the template ``prometheus-<cr>-db`` (prometheus-operator: ``volumeName``), so the
  PVC is ``prometheus-<cr>-db-prometheus-<cr>-0``.
- Grafana (subchart grafana 12.4.1, templates/pvc.yaml): the PVC ``grafana.fullname``,
  the same rule without the cut to 26: ``kube-prometheus-stack-grafana``.
"""

from __future__ import annotations

from typing import Any

from tasks.stack.render import Release, at


def fullname(release: Release) -> str:
    override = str(at(release.values, "fullnameOverride") or "")
    name = str(at(release.values, "nameOverride") or release.chart)
    if override:
        base = override
    elif name in release.name:
        base = release.name
    else:
        base = f"{release.name}-{name}"
    return base[:26].rstrip("-")


def prometheus(release: Release) -> str:
    """The Prometheus custom resource and its Service."""
    return f"{fullname(release)}-prometheus"


def prometheus_port(release: Release) -> str:
    return str(at(release.values, "prometheus.prometheusSpec.portName") or "http-web")


def prometheus_claim(release: Release) -> str:
    cr = prometheus(release)
    return f"prometheus-{cr}-db-prometheus-{cr}-0"


def grafana_claim(release: Release) -> str:
    override: Any = at(release.values, "grafana.fullnameOverride")
    if override:
        return str(override)[:63].rstrip("-")
    name = release.name if "grafana" in release.name else f"{release.name}-grafana"
    return name[:63].rstrip("-")
