"""The spec's numbers on what the upstream charts render from our values.

Our values say ``retention: 7d``; these checks look at what the chart makes of them:
the Prometheus object, the PVCs, Grafana's Deployment, the ServiceMonitors and
Endpoints, every container image. The numbers are the inventory's (whose defaults are
STACK.md's); the names of what must be scraped are the spec's (section 6).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import yaml

from tasks.stack.components import monitoring
from tasks.stack.render import Document, Release, at, dig, of_kind
from tasks.stack.validate import policy

STORAGE_CLASS = "local-path"  # spec section 11
PROMETHEUS_PORT, GRAFANA_PORT, LOKI_PORT = 9090, 3000, 3100  # spec section 12 (Loki's own)
# Charts whose values set requests and limits on nothing, or not on everything: the
# requests/limits rules do not apply to what they render (a reason each).
RESOURCES_EXEMPT: dict[str, str] = {}
# What Prometheus must scrape (spec section 6), as kube-prometheus-stack names its
# ServiceMonitors (``<release>-<suffix>``): (suffix, endpoint path or None, what it is).
SCRAPED = (("apiserver", None, "the Kubernetes API server"),
           ("kubelet", None, "the kubelet"),
           ("kubelet", "/metrics/cadvisor", "cAdvisor"),
           ("prometheus-node-exporter", None, "node exporter"))
# The annotation Prometheus keeps annotated pods by (spec: "annotated applications").
SCRAPE_ANNOTATION = "__meta_kubernetes_pod_annotation_prometheus_io_scrape"

Check = Callable[[Release, list[Document], Mapping[str, Any]], list[str]]


def _at(obj: Any, dotted: str) -> Any:
    """:func:`~tasks.stack.render.dig` by a dotted path whose numbers index lists."""
    return dig(obj, *(int(k) if k.isdigit() else k for k in dotted.split(".")))


def _expect(doc: Document, path: str, want: Any, why: str) -> list[str]:
    got = _at(doc.obj, path)
    return [] if got == want else [f"{doc.label}: {path}: {got!r}, expected {want!r} ({why})"]


def _named(docs: Iterable[Document], kind: str, name: str) -> Document | None:
    return next((d for d in docs if d.kind == kind and d.name == name), None)


def workload_rules(release: Release, docs: list[Document]) -> list[str]:
    """Pinned images on every container the chart renders (Prometheus's own too), and
    requests and limits unless the chart is exempt."""
    rules = [policy.Rule("image", policy.image)]
    if release.chart not in RESOURCES_EXEMPT:
        rules += [policy.Rule("requests", policy.requests), policy.Rule("limits", policy.limits)]
    out = []
    for doc in docs:
        pod = policy.pod_of(doc)
        if pod is not None:
            out += [f"{doc.label}: {path}: {problem} (rule: {rule.name})"
                    for rule in rules for path, problem in rule.check(pod)]
        elif doc.api_version.startswith("monitoring.coreos.com/") and at(doc.obj, "spec.image"):
            fake = policy.Pod(doc, {"containers": [{"image": at(doc.obj, "spec.image")}]})
            out += [f"{doc.label}: spec.image: {problem} (rule: image)"
                    for _, problem in policy.image(fake)]
    return out


def _prometheus(release: Release, docs: list[Document], ctx: Mapping[str, Any]) -> list[str]:
    found = of_kind(docs, "Prometheus", "monitoring.coreos.com")
    if len(found) != 1:
        return [f"chart {release.chart} {release.version}: renders {len(found)} Prometheus"
                " objects, expected 1 (spec section 6)"]
    prom, mon = found[0], ctx["monitoring"]
    claim = "spec.storage.volumeClaimTemplate.spec"
    out = _expect(prom, "spec.retention", mon["retention"], "monitoring.retention, spec §6")
    out += _expect(prom, f"{claim}.storageClassName", STORAGE_CLASS, "spec §11")
    out += _expect(prom, f"{claim}.resources.requests.storage", mon["prometheus_storage"],
                   "monitoring.prometheus_storage, spec §6")
    for key in ("serviceMonitor", "podMonitor"):
        out += _expect(prom, f"spec.{key}NamespaceSelector", {}, "every namespace")
    return out + _annotated_pods(release, prom, docs)


def _annotated_pods(release: Release, prom: Document, docs: list[Document]) -> list[str]:
    """The additional scrape config keeps pods annotated prometheus.io/scrape."""
    ref = at(prom.obj, "spec.additionalScrapeConfigs") or {}
    secret = _named(docs, "Secret", str(ref.get("name", "")))
    text = dig(secret.obj, "data", str(ref.get("key", ""))) if secret else None
    jobs: Any = None
    if isinstance(text, str):
        try:
            jobs = yaml.safe_load(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError, yaml.YAMLError):
            jobs = None
    for job in jobs if isinstance(jobs, list) else []:
        roles = [c.get("role") for c in job.get("kubernetes_sd_configs") or []
                 if isinstance(c, dict)]
        keeps = [r for r in job.get("relabel_configs") or [] if isinstance(r, dict)
                 and r.get("action") == "keep" and SCRAPE_ANNOTATION in (r.get("source_labels")
                                                                        or [])]
        if "pod" in roles and keeps:
            return []
    return [f"{prom.label}: spec.additionalScrapeConfigs: no job keeps pods annotated"
            " prometheus.io/scrape (spec §6: annotated applications)"]


def _scraped(release: Release, docs: list[Document], ctx: Mapping[str, Any]) -> list[str]:
    monitors = {d.name: d for d in of_kind(docs, "ServiceMonitor", "monitoring.coreos.com")}
    out = []
    for suffix, path, what in SCRAPED:
        doc = monitors.get(f"{release.name}-{suffix}")
        paths = [e.get("path") for e in at(doc.obj, "spec.endpoints") or []
                 if isinstance(e, dict)] if doc else []
        if doc is None or (path is not None and path not in paths):
            where = f" on {path}" if path else ""
            out.append(f"chart {release.chart} {release.version}: no ServiceMonitor"
                       f" {release.name}-{suffix} scrapes {what}{where} (spec §6)")
    return out + _k3s_endpoints(release, docs, ctx)


def _k3s_endpoints(release: Release, docs: list[Document], ctx: Mapping[str, Any]
                   ) -> list[str]:
    """The Endpoints of K3s's in-process components: the nodes' IPs and K3s's ports."""
    derived = ctx["derived"]
    ips = {"kubeControllerManager": derived["monitoring_server_ips"],
           "kubeScheduler": derived["monitoring_server_ips"],
           "kubeProxy": derived["monitoring_node_ips"]}
    names = {"kubeControllerManager": "kube-controller-manager",
             "kubeScheduler": "kube-scheduler", "kubeProxy": "kube-proxy"}
    out = []
    for key, port, _ in monitoring.K3S_COMPONENTS:
        name = f"{release.name}-{names[key]}"
        doc = _named(docs, "Endpoints", name)
        if doc is None:
            out.append(f"chart {release.chart} {release.version}: no Endpoints {name}"
                       f" (K3s serves it on the nodes' port {port})")
            continue
        subsets = at(doc.obj, "subsets") or [{}]
        got = sorted(str(a.get("ip")) for s in subsets for a in s.get("addresses") or [])
        out += [] if got == sorted(ips[key]) else [
            f"{doc.label}: subsets[].addresses: {got}, expected the nodes' IPs {ips[key]}"]
        out += _expect(doc, "subsets.0.ports.0.port", port, "K3s's port")
    return out


def _grafana(release: Release, docs: list[Document], ctx: Mapping[str, Any]) -> list[str]:
    name = f"{release.name}-grafana"
    out = []
    pvc = _named(docs, "PersistentVolumeClaim", name)
    if pvc is None:
        out.append(f"chart {release.chart} {release.version}: no PersistentVolumeClaim {name}"
                   " (spec §7: a 5Gi PVC)")
    else:
        out += _expect(pvc, "spec.storageClassName", STORAGE_CLASS, "spec §11")
        out += _expect(pvc, "spec.resources.requests.storage",
                       ctx["monitoring"]["grafana_storage"],
                       "monitoring.grafana_storage, spec §7")
    own = _named(docs, "Secret", name)
    if own is not None and "admin-password" in (own.obj.get("data") or {}):
        out.append(f"{own.label}: data.admin-password: the chart makes its own admin password"
                   f" (spec §7: the Secret {monitoring.GRAFANA_ADMIN_SECRET['name']} only)")
    deployment = _named(docs, "Deployment", name)
    containers = (at(deployment.obj, "spec.template.spec.containers") or []) if deployment else []
    grafana = next((c for c in containers if c.get("name") == "grafana"), None)
    if deployment is None or grafana is None:
        return [*out, f"chart {release.chart} {release.version}: no Deployment {name} with"
                      " a container grafana"]
    env = {e.get("name"): at(e, "valueFrom.secretKeyRef") for e in grafana.get("env") or []}
    secret = monitoring.GRAFANA_ADMIN_SECRET
    for var, key in (("GF_SECURITY_ADMIN_USER", "userKey"),
                     ("GF_SECURITY_ADMIN_PASSWORD", "passwordKey")):
        want = {"name": secret["name"], "key": secret[key]}
        if env.get(var) != want:
            out.append(f"{deployment.label}: containers[grafana].env.{var}: must come from"
                       f" the Secret {secret['name']} key {secret[key]} (spec §7: never a"
                       f" default password), got {env.get(var)!r}")
    return out


def _services(release: Release, docs: list[Document], ports: Mapping[str, int]
              ) -> list[str]:
    out = []
    for name, port in ports.items():
        doc = _named(docs, "Service", name)
        got = [p.get("port") for p in at(doc.obj, "spec.ports") or []] if doc else []
        if port not in got:
            out.append(f"chart {release.chart} {release.version}: Service {name}: port"
                       f" {port} missing (spec §12), got {got}")
    return out


def _kube_prometheus_stack(release: Release, docs: list[Document], ctx: Mapping[str, Any]
                           ) -> list[str]:
    ports = {f"{release.name}-prometheus": PROMETHEUS_PORT,
             f"{release.name}-grafana": GRAFANA_PORT}
    return (_prometheus(release, docs, ctx) + _scraped(release, docs, ctx)
            + _grafana(release, docs, ctx) + _services(release, docs, ports))


def _loki(release: Release, docs: list[Document], ctx: Mapping[str, Any]) -> list[str]:
    found = of_kind(docs, "StatefulSet")
    claims = [(d, i) for d in found
              for i, c in enumerate(at(d.obj, "spec.volumeClaimTemplates") or [])
              if at(c, "metadata.name") == "storage"]
    if not claims:
        return [f"chart {release.chart} {release.version}: no StatefulSet with a storage"
                " volume claim (Loki's data on local-path)"]
    out = []
    for doc, i in claims:
        path = f"spec.volumeClaimTemplates.{i}.spec"
        out += _expect(doc, f"{path}.storageClassName", STORAGE_CLASS, "spec §11")
        out += _expect(doc, f"{path}.resources.requests.storage",
                       ctx["monitoring"]["loki_storage"], "monitoring.loki_storage")
    return out + _services(release, docs, {release.name: LOKI_PORT})


#: chart -> its spec checks (every chart gets :func:`workload_rules` and the password scan)
CHECKS: dict[str, Check] = {
    "kube-prometheus-stack": _kube_prometheus_stack,
    "loki": _loki,
}


def _strings(docs: Iterable[Document]) -> Iterator[tuple[Document, str, str]]:
    """Every string of every object, a Secret's data decoded."""
    for doc in docs:
        for path, text in monitoring.strings(doc.obj):
            yield doc, path, text
        data = doc.obj.get("data") if doc.kind == "Secret" else None
        for key, value in (data or {}).items() if isinstance(data, dict) else ():
            try:
                yield doc, f"data.{key}", base64.b64decode(str(value)).decode(errors="replace")
            except (binascii.Error, ValueError):
                continue


def check(release: Release, docs: list[Document], ctx: Mapping[str, Any]) -> list[str]:
    """Every spec problem of what ``release``'s chart rendered, one line each."""
    out = workload_rules(release, docs)
    for doc, path, text in _strings(docs):
        out += [f"{doc.label}: {path}: default password {password!r} is forbidden"
                for password in monitoring.DEFAULT_PASSWORDS if password in text]
    hook = CHECKS.get(release.chart)
    return out + (hook(release, docs, ctx) if hook else [])
