"""The spec's numbers on what kube-prometheus-stack and Loki render (upstream/checks.py).

The objects are a hand-written cut of the chart's output (fixtures/upstream/), so these
run without the real charts; test_stack_monitoring.py runs the same checks on the real
render when the charts are pulled.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from platform_ctx import variant

from tasks.stack.components import monitoring
from tasks.stack.render import Document, Release, parse_documents
from tasks.stack.upstream import checks

FIXTURE = Path(__file__).parent / "fixtures" / "upstream" / "kube-prometheus-stack.yaml"
SOURCE = "chart:kube-prometheus-stack-85.4.0/rendered.yaml"
CHART = "chart kube-prometheus-stack 85.4.0"
SCRAPE = """\
- job_name: kubernetes-pods
  kubernetes_sd_configs: [{role: pod}]
  relabel_configs:
    - action: keep
      source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
      regex: "true"
"""


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def rendered() -> list[Document]:
    docs = parse_documents(FIXTURE.read_text(), SOURCE)
    secret = next(d for d in docs if d.kind == "Secret")
    secret.obj["data"] = {"additional-scrape-configs.yaml": encoded(SCRAPE)}
    return docs


@pytest.fixture
def ctx() -> dict[str, Any]:
    return variant()


def kps(ctx: dict[str, Any]) -> Release:
    return monitoring.release(monitoring.KUBE_PROMETHEUS_STACK, ctx)


def obj(docs: list[Document], kind: str, name: str) -> dict[str, Any]:
    return next(d.obj for d in docs if d.kind == kind and d.name == name)


def test_the_rendered_stack_meets_the_spec(ctx: dict[str, Any]) -> None:
    assert checks.check(kps(ctx), rendered(), ctx) == []


P = "kube-prometheus-stack-prometheus"
G = "kube-prometheus-stack-grafana"
Edit = Callable[[list[Document]], None]


def spec_of(kind: str, name: str, *path: str) -> Callable[[list[Document]], dict[str, Any]]:
    def get(docs: list[Document]) -> dict[str, Any]:
        node = obj(docs, kind, name)
        for key in path:
            node = node[key]
        return node
    return get


prom = spec_of("Prometheus", P, "spec")
claim = spec_of("Prometheus", P, "spec", "storage", "volumeClaimTemplate", "spec")
pvc = spec_of("PersistentVolumeClaim", G, "spec")
grafana = spec_of("Deployment", G, "spec", "template", "spec")


def drop(kind: str, name: str) -> Edit:
    return lambda docs: docs.remove(next(d for d in docs if d.kind == kind and d.name == name))


CASES: list[tuple[str, Edit, list[str]]] = [
    ("retention", lambda d: prom(d).update(retention="10d"),
     [f"{SOURCE}: Prometheus {P}: spec.retention: '10d', expected '7d' (monitoring.retention,"
      " spec §6)"]),
    ("storage class", lambda d: claim(d).update(storageClassName="standard"),
     [f"{SOURCE}: Prometheus {P}: spec.storage.volumeClaimTemplate.spec.storageClassName:"
      " 'standard', expected 'local-path' (spec §11)"]),
    ("prometheus size", lambda d: claim(d)["resources"]["requests"].update(storage="8Gi"),
     [f"{SOURCE}: Prometheus {P}: spec.storage.volumeClaimTemplate.spec.resources.requests"
      ".storage: '8Gi', expected '10Gi' (monitoring.prometheus_storage, spec §6)"]),
    ("namespaces", lambda d: prom(d).update(podMonitorNamespaceSelector=None),
     [f"{SOURCE}: Prometheus {P}: spec.podMonitorNamespaceSelector: None, expected {{}}"
      " (every namespace)"]),
    ("annotated pods", lambda d: obj(d, "Secret", f"{P}-scrape-confg")["data"].update({
        "additional-scrape-configs.yaml": encoded(SCRAPE.replace("keep", "drop"))}),
     [f"{SOURCE}: Prometheus {P}: spec.additionalScrapeConfigs: no job keeps pods annotated"
      " prometheus.io/scrape (spec §6: annotated applications)"]),
    ("image", lambda d: prom(d).update(image="quay.io/prometheus/prometheus:latest"),
     [f"{SOURCE}: Prometheus {P}: spec.image: quay.io/prometheus/prometheus:latest: :latest"
      " is not pinned; use a version or digest (rule: image)"]),
    ("cadvisor", lambda d: obj(d, "ServiceMonitor", "kube-prometheus-stack-kubelet")[
        "spec"]["endpoints"].pop(),
     [f"{CHART}: no ServiceMonitor kube-prometheus-stack-kubelet scrapes cAdvisor on"
      " /metrics/cadvisor (spec §6)"]),
    ("apiserver", drop("ServiceMonitor", "kube-prometheus-stack-apiserver"),
     [f"{CHART}: no ServiceMonitor kube-prometheus-stack-apiserver scrapes the Kubernetes"
      " API server (spec §6)"]),
    ("endpoint ip", lambda d: obj(d, "Endpoints", "kube-prometheus-stack-kube-proxy")[
        "subsets"][0].update(addresses=[{"ip": "10.42.0.1"}]),
     [f"{SOURCE}: Endpoints kube-prometheus-stack-kube-proxy: subsets[].addresses:"
      " ['10.42.0.1'], expected the nodes' IPs ['203.0.113.20']"]),
    ("endpoint port", lambda d: obj(d, "Endpoints", "kube-prometheus-stack-kube-scheduler")[
        "subsets"][0]["ports"][0].update(port=10251),
     [f"{SOURCE}: Endpoints kube-prometheus-stack-kube-scheduler: subsets.0.ports.0.port:"
      " 10251, expected 10259 (K3s's port)"]),
    ("grafana size", lambda d: pvc(d)["resources"]["requests"].update(storage="1Gi"),
     [f"{SOURCE}: PersistentVolumeClaim {G}: spec.resources.requests.storage: '1Gi',"
      " expected '5Gi' (monitoring.grafana_storage, spec §7)"]),
    ("grafana admin", lambda d: grafana(d)["containers"][0]["env"][1].update(
        value="admin123", valueFrom=None),
     [f"{SOURCE}: Deployment {G}: spec.template.spec.containers[0].env[1].value: default"
      " password 'admin123' is forbidden",
      f"{SOURCE}: Deployment {G}: containers[grafana].env.GF_SECURITY_ADMIN_PASSWORD: must"
      " come from the Secret grafana-admin key admin-password (spec §7: never a default"
      " password), got None"]),
    ("chart's admin secret", lambda d: d.append(Document(SOURCE, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": G},
        "data": {"admin-password": encoded("prom-operator")}})),
     [f"{SOURCE}: Secret {G}: data.admin-password: default password 'prom-operator' is"
      " forbidden",
      f"{SOURCE}: Secret {G}: data.admin-password: the chart makes its own admin password"
      " (spec §7: the Secret grafana-admin only)"]),
    ("grafana limits", lambda d: grafana(d)["containers"][0]["resources"].pop("limits"),
     [f"{SOURCE}: Deployment {G}: containers[0].resources.limits.{r}: missing (rule:"
      " limits)" for r in ("cpu", "memory")]),
    ("prometheus port", lambda d: obj(d, "Service", P)["spec"]["ports"][0].update(port=80),
     [f"{CHART}: Service {P}: port 9090 missing (spec §12), got [80]"]),
]


@pytest.mark.parametrize(("edit", "wanted"), [(e, w) for _, e, w in CASES],
                         ids=[c[0] for c in CASES])
def test_each_departure_from_the_spec_is_one_line(ctx: dict[str, Any], edit: Edit,
                                                  wanted: list[str]) -> None:
    docs = rendered()
    edit(docs)
    assert checks.check(kps(ctx), docs, ctx) == wanted


def test_the_numbers_are_the_inventory_s(ctx: dict[str, Any]) -> None:
    bigger = variant(monitoring={"retention": "15d", "prometheus_storage": "20Gi"})
    assert checks.check(kps(bigger), rendered(), bigger) == [
        f"{SOURCE}: Prometheus {P}: spec.retention: '7d', expected '15d'"
        " (monitoring.retention, spec §6)",
        f"{SOURCE}: Prometheus {P}: spec.storage.volumeClaimTemplate.spec.resources.requests"
        ".storage: '10Gi', expected '20Gi' (monitoring.prometheus_storage, spec §6)"]


LOKI = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: loki, namespace: monitoring}
spec:
  selector: {matchLabels: {app: loki}}
  template:
    metadata: {labels: {app: loki}}
    spec:
      containers:
        - name: loki
          image: docker.io/grafana/loki:3.7.6
          resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {cpu: "1", memory: 1Gi}}
  volumeClaimTemplates:
    - metadata: {name: storage}
      spec:
        storageClassName: local-path
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 10Gi}}
---
apiVersion: v1
kind: Service
metadata: {name: loki, namespace: monitoring}
spec:
  ports: [{name: http-metrics, port: 3100}]
"""


def test_loki_keeps_its_data_on_local_path() -> None:
    ctx = variant(monitoring={"loki": True})
    release = monitoring.release(monitoring.LOKI, ctx)
    docs = parse_documents(LOKI, "chart:loki-18.11.0/rendered.yaml")
    assert checks.check(release, docs, ctx) == []
    broken = copy.deepcopy(docs[0].obj)
    broken["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = "standard"
    assert checks.check(release, [Document(docs[0].source, broken), docs[1]], ctx) == [
        "chart:loki-18.11.0/rendered.yaml: StatefulSet loki: spec.volumeClaimTemplates.0"
        ".spec.storageClassName: 'standard', expected 'local-path' (spec §11)"]
