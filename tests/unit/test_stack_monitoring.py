"""The monitoring component: kube-prometheus-stack values, dashboards, Loki when asked.

Spec numbers (STACK.md sections 6, 7, 11, 12) are asserted on the rendered bundle. When
the pinned charts are in ``.cache/charts/`` (``inv charts.pull``, digests checked against
``charts.lock.yaml``), the last tests also render them with real ``helm template`` and check
the objects they produce and that every key we set exists in the chart, through the
product's code (tasks/stack/upstream/, what ``inv validate`` runs).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.engine.errors import UserError
from tasks.model.fields import build
from tasks.model.model import Inventory, Versions
from tasks.repo import REPO_ROOT
from tasks.stack import charts, helm, scrape
from tasks.stack.components import grafana_dashboards, monitoring, promql
from tasks.stack.render import Bundle, Document, Release
from tasks.stack.upstream import checks as upstream_checks
from tasks.stack.upstream import keys, template
from tasks.stack.upstream.archive import read_chart
from tests.unit.platform_ctx import ctx_of, inventory


@pytest.fixture(scope="module")
def ctx() -> dict[str, Any]:
    return ctx_of(inventory())


@pytest.fixture(scope="module")
def bundle(ctx: dict[str, Any]) -> Bundle:
    return monitoring.render(ctx)


@pytest.fixture(scope="module")
def loki_ctx() -> dict[str, Any]:
    return ctx_of(inventory(monitoring={"loki": True}))


@pytest.fixture(scope="module")
def loki_bundle(loki_ctx: dict[str, Any]) -> Bundle:
    return monitoring.render(loki_ctx)


def rel(bundle: Bundle, name: str) -> Release:
    (found,) = [r for r in bundle.releases if r.name == name]
    return found


def kps(bundle: Bundle) -> dict[str, Any]:
    return rel(bundle, "kube-prometheus-stack").values


def doc(bundle: Bundle, kind: str, name: str) -> dict[str, Any]:
    (obj,) = [d.obj for d in bundle.documents if d.kind == kind and d.name == name]
    return obj


# --- the release -----------------------------------------------------------------------

def test_chart_pinned(bundle: Bundle) -> None:
    release = rel(bundle, "kube-prometheus-stack")
    assert (release.chart, release.version) == ("kube-prometheus-stack", "85.4.0")
    assert Versions().kube_prometheus_stack == "85.4.0"
    assert release.repo_url == "https://prometheus-community.github.io/helm-charts"
    assert (release.namespace, release.values_source) == (
        "monitoring", "helm-values/kube-prometheus-stack.yaml")
    assert [r.name for r in bundle.releases] == ["kube-prometheus-stack"]


def test_version_follows_inventory() -> None:
    bundle = monitoring.render(ctx_of(inventory(versions={"kube_prometheus_stack": "85.3.0"})))
    assert rel(bundle, "kube-prometheus-stack").version == "85.3.0"


def test_prometheus_retention_and_volume(bundle: Bundle) -> None:
    spec = kps(bundle)["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "7d"  # spec section 6
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "10Gi"  # spec section 6
    assert claim["storageClassName"] == "local-path"  # spec section 11
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert spec["retentionSize"] == "8704MiB"  # 85% of 10Gi
    assert kps(bundle)["prometheus"]["service"]["port"] == 9090  # spec section 12


def test_grafana_volume_and_port(bundle: Bundle) -> None:
    grafana = kps(bundle)["grafana"]
    assert grafana["persistence"]["enabled"] is True
    assert grafana["persistence"]["size"] == "5Gi"  # spec section 7
    assert grafana["persistence"]["storageClassName"] == "local-path"
    assert grafana["service"]["port"] == 3000  # spec section 12
    assert grafana["deploymentStrategy"] == {"type": "Recreate"}


def test_sizes_and_retention_follow_inventory() -> None:
    values = kps(monitoring.render(ctx_of(inventory(monitoring={
        "retention": "15d", "prometheus_storage": "20Gi", "grafana_storage": "2Gi"}))))
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"][
        "storage"] == "20Gi"
    assert spec["retentionSize"] == "17408MiB"
    assert values["grafana"]["persistence"]["size"] == "2Gi"


def test_grafana_admin_from_existing_secret(bundle: Bundle) -> None:
    grafana = kps(bundle)["grafana"]
    assert grafana["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user",
                                "passwordKey": "admin-password"}
    assert "adminPassword" not in grafana


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    else:
        yield str(value)


def test_no_default_password_anywhere(bundle: Bundle, loki_bundle: Bundle) -> None:
    rendered = [*strings([r.values for r in loki_bundle.releases]),
                *strings([d.obj for d in loki_bundle.documents + bundle.documents])]
    files = [p.read_text() for p in [
        *(REPO_ROOT / "helm-values" / f"{name}.yaml" for name in ("kube-prometheus-stack",
                                                                 "loki", "alloy")),
        *(REPO_ROOT / "manifests" / "monitoring").rglob("*.yaml")]]
    for text in rendered + files:
        assert "admin123" not in text and "prom-operator" not in text


def test_selectors_open_to_all_namespaces(bundle: Bundle) -> None:
    spec = kps(bundle)["prometheus"]["prometheusSpec"]
    for key in ("serviceMonitorSelectorNilUsesHelmValues", "podMonitorSelectorNilUsesHelmValues",
                "ruleSelectorNilUsesHelmValues", "probeSelectorNilUsesHelmValues",
                "scrapeConfigSelectorNilUsesHelmValues"):
        assert spec[key] is False, key


def test_etcd_off_coredns_on(bundle: Bundle) -> None:
    values = kps(bundle)
    assert values["kubeEtcd"]["enabled"] is False
    assert values["defaultRules"]["rules"]["etcd"] is False
    assert values["coreDns"]["enabled"] is True
    assert values["coreDns"]["service"]["port"] == 9153
    assert values["kubeDns"]["enabled"] is False


@pytest.mark.parametrize(("key", "port", "https"), [
    ("kubeControllerManager", 10257, True), ("kubeScheduler", 10259, True),
    ("kubeProxy", 10249, False)])
def test_k3s_component_endpoints(bundle: Bundle, key: str, port: int, https: bool) -> None:
    section = kps(bundle)[key]
    assert section["enabled"] is True
    assert section["endpoints"] == ["203.0.113.20"]
    assert (section["service"]["port"], section["service"]["targetPort"]) == (port, port)
    assert section["serviceMonitor"]["https"] is https
    # Each K3s endpoint serves every in-process component's metrics: keep only its own.
    (keep,) = section["serviceMonitor"]["metricRelabelings"]
    assert keep["action"] == "keep"


def test_k3s_endpoints_on_several_nodes() -> None:
    hosts = [
        {"name": "s1", "address": "198.51.100.1", "user": "admin", "key_file": "k"},
        {"name": "s2", "address": "s2.example.com", "internal_address": "10.0.0.2",
         "user": "admin", "key_file": "k"},
        {"name": "a1", "address": "198.51.100.3", "user": "admin", "key_file": "k",
         "role": "agent"},
    ]
    ctx = ctx_of(inventory(hosts=hosts))
    values = kps(monitoring.render(ctx))
    servers = ["198.51.100.1", "10.0.0.2"]
    assert values["kubeControllerManager"]["endpoints"] == servers
    assert values["kubeScheduler"]["endpoints"] == servers
    assert values["kubeProxy"]["endpoints"] == [*servers, "198.51.100.3"]
    assert monitoring.checks(monitoring.render(ctx), ctx) == []


def test_unreachable_node_address_is_reported() -> None:
    # A lab VM reached through port forwarding: 127.0.0.1 is no address for Endpoints.
    hosts = [{"name": "lab", "address": "127.0.0.1", "port": 2222, "user": "admin",
              "key_file": "k"}]
    ctx = ctx_of(inventory(hosts=hosts))
    problems = monitoring.checks(monitoring.render(ctx), ctx)
    assert ("helm-values/kube-prometheus-stack.yaml: Release kube-prometheus-stack:"
            " kubeControllerManager.endpoints[0]: '127.0.0.1' is not an IP pods can reach"
            " the node on: set hosts[].internal_address in the inventory") in problems
    fixed = ctx_of(inventory(hosts=[{**hosts[0], "internal_address": "10.0.2.15"}]))
    assert monitoring.checks(monitoring.render(fixed), fixed) == []


def test_internal_address_must_be_a_node_ip() -> None:
    bad = [{"name": "v", "address": "203.0.113.20", "internal_address": "127.0.0.1",
            "user": "admin", "key_file": "k"}]
    _, errors = build(Inventory, inventory(hosts=bad))
    assert errors == ["hosts[0].internal_address: expected a node IP address (not loopback,"
                      ' unspecified or multicast), got "127.0.0.1"']


def test_annotated_pods_are_scraped(bundle: Bundle) -> None:
    (job,) = kps(bundle)["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    keep = job["relabel_configs"][0]
    assert keep == {"action": "keep", "regex": "true",
                    "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]}
    address = [r for r in job["relabel_configs"] if r.get("target_label") == "__address__"]
    assert address[0]["replacement"] == "$1:$2"


def test_pods_with_a_service_monitor_are_not_scraped_twice(bundle: Bundle) -> None:
    (job,) = kps(bundle)["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]
    drops = [r for r in job["relabel_configs"] if r["action"] == "drop"
             and "__meta_kubernetes_pod_label_app_kubernetes_io_name" in r["source_labels"]]
    assert drops == [{"action": "drop", "regex": "kube-system;traefik|cert-manager;cert-manager",
                      "source_labels": ["__meta_kubernetes_namespace",
                                        "__meta_kubernetes_pod_label_app_kubernetes_io_name"]}]


def test_service_monitors_of_traefik_and_cert_manager(bundle: Bundle) -> None:
    """As the charts name and label their metrics Services: traefik 34.2.0 (K3s v1.33.3's
    bundled 34.2.1+up34.2.0), templates/service-metrics.yaml; cert-manager v1.13.1,
    templates/service.yaml."""
    monitors = {d.name: d.obj for d in bundle.documents if d.kind == "ServiceMonitor"}
    assert sorted(monitors) == ["cert-manager", "traefik"]
    traefik, cert_manager = monitors["traefik"], monitors["cert-manager"]
    for monitor in monitors.values():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["namespace"] == "monitoring"
        assert monitor["metadata"]["labels"] == {
            "app.kubernetes.io/part-of": "k3s-vps-platform",
            "app.kubernetes.io/managed-by": "stack"}
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert traefik["spec"]["namespaceSelector"] == {"matchNames": ["kube-system"]}
    assert traefik["spec"]["selector"] == {"matchLabels": {
        "app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-kube-system",
        "app.kubernetes.io/component": "metrics"}}
    assert traefik["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics",
                                             "interval": "30s"}]
    assert cert_manager["spec"]["namespaceSelector"] == {"matchNames": ["cert-manager"]}
    assert cert_manager["spec"]["selector"] == {"matchLabels": {
        "app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/instance": "cert-manager",
        "app.kubernetes.io/component": "controller"}}
    assert cert_manager["spec"]["endpoints"] == [{
        "port": "tcp-prometheus-servicemonitor", "path": "/metrics", "interval": "60s",
        "scrapeTimeout": "30s"}]


def test_service_monitors_wait_for_the_monitoring_layer_in_gitops(ctx: dict[str, Any]) -> None:
    from tasks.stack import gitops

    layout = gitops.build(ctx)
    path = "clusters/vps/monitoring/custom-resources/servicemonitors.yaml"
    assert [o["kind"] for o in yaml.safe_load_all(layout.files[path])] == [
        "ServiceMonitor", "ServiceMonitor"]
    (layers,) = [f for p, f in layout.files.items() if p.endswith("flux-system/layers.yaml")]
    deps = {o["metadata"]["name"]: [d["name"] for d in o["spec"].get("dependsOn", [])]
            for o in yaml.safe_load_all(layers) if o}
    assert deps["monitoring-custom-resources"] == ["namespaces", "monitoring"]
    assert deps["monitoring"] == ["namespaces"]


def resources_in(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key == "resources" and isinstance(item, dict) and "requests" in item:
                if not sub.endswith("volumeClaimTemplate.spec.resources"):  # a PVC's size
                    yield sub, item
            else:
                yield from resources_in(item, sub)


def test_every_component_has_requests_and_limits(loki_bundle: Bundle) -> None:
    found = {}
    for release in loki_bundle.releases:
        for path, res in resources_in(release.values):
            assert set(res) == {"requests", "limits"}, path
            for kind in ("requests", "limits"):
                assert set(res[kind]) == {"cpu", "memory"}, f"{path}.{kind}"
            found[f"{release.name}:{path}"] = res
    assert set(found) == {
        "kube-prometheus-stack:kube-state-metrics.resources",
        "kube-prometheus-stack:prometheus-node-exporter.resources",
        "kube-prometheus-stack:prometheusOperator.resources",
        "kube-prometheus-stack:prometheusOperator.admissionWebhooks.patch.resources",
        "kube-prometheus-stack:prometheusOperator.prometheusConfigReloader.resources",
        "kube-prometheus-stack:prometheus.prometheusSpec.resources",
        "kube-prometheus-stack:grafana.resources",
        "kube-prometheus-stack:grafana.sidecar.resources",
        "loki:singleBinary.resources",
        "alloy:alloy.resources",
        "alloy:configReloader.resources",
    }


def test_alertmanager_off_and_default_dashboards_off(bundle: Bundle) -> None:
    values = kps(bundle)
    assert values["alertmanager"]["enabled"] is False
    assert values["grafana"]["defaultDashboardsEnabled"] is False
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["enabled"], sidecar["label"], sidecar["labelValue"]) == (
        True, "grafana_dashboard", "1")


# --- the namespace ---------------------------------------------------------------------

def test_namespace_podsecurity(bundle: Bundle) -> None:
    labels = doc(bundle, "Namespace", "monitoring")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert {labels[f"pod-security.kubernetes.io/{m}-version"]
            for m in ("enforce", "audit", "warn")} == {"v1.33"}
    assert labels["app.kubernetes.io/part-of"] == "k3s-vps-platform"
    text = (REPO_ROOT / "manifests" / "monitoring" / "namespace.yaml").read_text()
    assert "node-exporter" in text and "hostPID" in text  # the justification


# --- dashboards ------------------------------------------------------------------------

def dashboards_of(bundle: Bundle) -> dict[str, dict[str, Any]]:
    out = {}
    for d in bundle.documents:
        if d.kind == "ConfigMap" and d.name.startswith("grafana-dashboard-"):
            assert d.obj["metadata"]["labels"]["grafana_dashboard"] == "1"
            assert d.obj["metadata"]["namespace"] == "monitoring"
            ((key, text),) = d.obj["data"].items()
            dashboard = json.loads(text)
            assert key == f"{dashboard['uid']}.json"
            out[dashboard["title"]] = dashboard
    return out


def exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def test_four_dashboards(bundle: Bundle) -> None:
    found = dashboards_of(bundle)
    assert set(found) == {"Kubernetes cluster", "Node Exporter", "Traefik", "Applications"}
    assert len({d["uid"] for d in found.values()}) == 4
    for dashboard in found.values():
        assert dashboard["panels"]
        for panel in dashboard["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24 and pos["w"] > 0
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}


def test_applications_dashboard_panels(bundle: Bundle) -> None:
    panels = {title: expr for title, expr in exprs(dashboards_of(bundle)["Applications"])}
    assert 'traefik_service_requests_total{service=~"app-.+"}' in panels["Request rate"]
    assert "histogram_quantile(0.95" in panels["Latency p95"]
    assert "traefik_service_request_duration_seconds_bucket" in panels["Latency p95"]
    assert 'code=~"5.."' in panels["Errors (5xx share)"]
    assert ('kube_pod_container_status_restarts_total{namespace="app"}'
            in panels["Restarts (1h)"])
    assert 'kafka_consumergroup_lag{namespace="kafka"}' in panels["Kafka consumer lag"]
    assert "Logs" not in panels


def test_applications_dashboard_follows_namespaces() -> None:
    ctx = ctx_of(inventory(apps={"namespace": "shop", "api_gateway": {"image": "r/a:1.0.0"}},
                           kafka={"namespace": "events"}))
    panels = dict(exprs(dashboards_of(monitoring.render(ctx))["Applications"]))
    assert 'service=~"shop-.+"' in panels["Request rate"]
    assert 'kafka_consumergroup_lag{namespace="events"}' in panels["Kafka consumer lag"]


def test_every_dashboard_query_uses_exported_metrics(bundle: Bundle) -> None:
    for dashboard in dashboards_of(bundle).values():
        for title, expr in exprs(dashboard):
            assert promql.problems(expr) == [], (dashboard["title"], title, expr)
        for var in dashboard["templating"]["list"]:
            (metric,) = re.findall(r"label_values\((\w+),", var["query"]["query"])
            assert metric in promql.KNOWN_METRICS


def test_promql_metric_extraction() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, service) (rate(traefik_service_request_'
            'duration_seconds_bucket{service=~"app-.+",code="5.."}[$__rate_interval])))'
            " / on(service) group_left node_load1 offset 5m > bool 0")
    assert promql.metric_names(expr) == {
        "traefik_service_request_duration_seconds_bucket", "node_load1"}
    assert promql.problems("sum(rate(http_requests_total[5m]))") == [
        "metric(s) no exporter of this stack provides: http_requests_total"]
    assert promql.problems("sum(rate(up[5m])") == ["unbalanced brackets"]
    assert promql.problems("vector(1)") == ["selects no metric"]


def test_dropped_cadvisor_metrics_are_not_known() -> None:
    # The chart's cAdvisor relabelling drops these: a panel on them would stay empty.
    for metric in ("container_spec_memory_limit_bytes", "container_cpu_user_seconds_total"):
        assert metric not in promql.KNOWN_METRICS


# --- Loki ------------------------------------------------------------------------------

def test_no_loki_by_default(bundle: Bundle) -> None:
    names = {(d.kind, d.name) for d in bundle.documents}
    assert ("ConfigMap", "grafana-datasource-loki") not in names
    assert {r.name for r in bundle.releases} == {"kube-prometheus-stack"}


def test_loki_release_and_data_source(loki_bundle: Bundle) -> None:
    loki, alloy = rel(loki_bundle, "loki"), rel(loki_bundle, "alloy")
    assert (loki.chart, loki.version, loki.namespace) == ("loki", "18.11.0", "monitoring")
    assert loki.repo_url == "https://grafana-community.github.io/helm-charts"
    assert (alloy.chart, alloy.version) == ("alloy", "1.11.1")
    assert alloy.repo_url == "https://grafana.github.io/helm-charts"
    values = loki.values
    assert values["deploymentMode"] == "Monolithic"
    assert values["loki"]["storage"]["type"] == "filesystem"
    assert values["loki"]["limits_config"]["retention_period"] == "7d"
    assert values["singleBinary"]["persistence"] == {"enabled": True, "storageClass":
                                                     "local-path", "size": "10Gi"}
    assert values["gateway"]["enabled"] is False
    config = alloy.values["alloy"]["configMap"]["content"]
    assert 'url = "http://loki.monitoring.svc:3100/loki/api/v1/push"' in config
    source = doc(loki_bundle, "ConfigMap", "grafana-datasource-loki")
    assert source["metadata"]["labels"]["grafana_datasource"] == "1"
    (datasource,) = yaml.safe_load(source["data"]["loki.yaml"])["datasources"]
    assert (datasource["type"], datasource["uid"], datasource["url"]) == (
        "loki", "loki", "http://loki.monitoring.svc:3100")
    panels = dashboards_of(loki_bundle)["Applications"]["panels"]
    assert panels[-1]["type"] == "logs" and panels[-1]["datasource"]["uid"] == "loki"


def test_checks_pass_for_default_and_loki(ctx: dict[str, Any], bundle: Bundle,
                                          loki_ctx: dict[str, Any], loki_bundle: Bundle) -> None:
    assert monitoring.checks(bundle, ctx) == []
    assert monitoring.checks(loki_bundle, loki_ctx) == []


# --- broken objects are caught -----------------------------------------------------------

LABEL = "helm-values/kube-prometheus-stack.yaml: Release kube-prometheus-stack"


def broken(bundle: Bundle, path: str, value: Any) -> Bundle:
    values = copy.deepcopy(kps(bundle))
    *parents, last = path.split(".")
    target = values
    for key in parents:
        target = target[key]
    target[last] = value
    releases = [r if r.name != "kube-prometheus-stack" else
                Release(**{**r.__dict__, "values": values}) for r in bundle.releases]
    return Bundle(documents=bundle.documents, releases=releases)


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues", True,
     "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues: must be false"),
    ("kubeEtcd.enabled", True, "kubeEtcd.enabled: must be false"),
    ("grafana.adminPassword", "admin123", "default password 'admin123' is forbidden"),
    ("grafana.adminPassword", "s3cret", "grafana.adminPassword: Grafana's password comes"),
    ("grafana.admin.existingSecret", "", "grafana.admin.existingSecret: must be"),
    ("kubeScheduler.service.port", 10251, "kubeScheduler.service.port: K3s serves it on"),
    ("kubeProxy.serviceMonitor.https", True, "kubeProxy.serviceMonitor.https: must be false"),
    ("kubeControllerManager.endpoints", ["10.9.9.9"], "kubeControllerManager.endpoints:"
     " must be the nodes' IPs"),
    ("prometheus.prometheusSpec.retention", "1h7d", "retention: '1h7d' is not a Prometheus"),
])
def test_checks_catch_broken_values(ctx: dict[str, Any], bundle: Bundle, path: str,
                                    value: Any, problem: str) -> None:
    problems = monitoring.checks(broken(bundle, path, value), ctx)
    assert any(p.startswith(LABEL) and problem in p for p in problems), problems


def test_checks_catch_broken_dashboards(ctx: dict[str, Any], bundle: Bundle) -> None:
    dash = grafana_dashboards.Dashboard("bad", "Bad", (
        grafana_dashboards.Panel("Requests", grafana_dashboards.q(
            "sum(rate(http_requests_total[5m]))")),))
    unknown = grafana_dashboards.configmap(dash)
    invalid = Document(unknown.source, {**unknown.obj, "data": {"bad.json": "{"}})
    unlabelled = Document(unknown.source, {**unknown.obj, "metadata": {
        **unknown.obj["metadata"], "labels": {}}})
    for bad, problem in [
            (unknown, "panel 'Requests': metric(s) no exporter of this stack provides:"
                      " http_requests_total"),
            (invalid, "data.bad.json: invalid JSON"),
            (unlabelled, "metadata.labels.grafana_dashboard: must be \"1\"")]:
        problems = monitoring.checks(Bundle(documents=[bad], releases=bundle.releases), ctx)
        assert [p for p in problems if p.startswith(
            "generated:grafana-dashboards: ConfigMap grafana-dashboard-bad: ")
            and problem in p], problems


def test_checks_catch_loki_mismatch(ctx: dict[str, Any], loki_bundle: Bundle) -> None:
    assert ("helm-values/loki.yaml: Release loki: installed only when monitoring.loki is"
            " true (it is false)") in monitoring.checks(loki_bundle, ctx)


def test_retention_size_share() -> None:
    assert scrape.retention_size("10Gi") == "8704MiB"
    assert scrape.retention_size("500Mi") == "425MiB"
    assert scrape.quantity_bytes("1G") == 10**9


# --- real helm template of the pinned charts (when pulled) ------------------------------
# The product's code (tasks/stack/upstream/, what inv validate runs) on the real archives.


def cached(release: Release) -> Path:
    try:
        path = charts.chart_archive(release)  # (a digest that differs fails the test)
    except charts.ChartMissing as exc:
        pytest.skip(str(exc))
    try:
        helm.helm_binary()
    except UserError as exc:
        pytest.skip(str(exc))
    return path


def helm_template(release: Release) -> list[dict[str, Any]]:
    docs = template.template(release, cached(release))
    text = json.dumps([d.obj for d in docs])
    assert "admin123" not in text and "prom-operator" not in text
    return [d.obj for d in docs]


@pytest.mark.parametrize("name", ["kube-prometheus-stack", "loki", "alloy"])
def test_every_value_key_exists_in_the_chart(loki_bundle: Bundle, name: str) -> None:
    release = rel(loki_bundle, name)
    assert keys.unknown_keys(release, read_chart(cached(release))) == []


@pytest.mark.parametrize("name", ["kube-prometheus-stack", "loki", "alloy"])
def test_the_rendered_chart_meets_the_spec(loki_ctx: dict[str, Any], loki_bundle: Bundle,
                                           name: str) -> None:
    release = rel(loki_bundle, name)
    docs = template.template(release, cached(release))
    assert upstream_checks.check(release, docs, loki_ctx) == []


def containers(objs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objs:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            pod = obj["spec"]["template"]["spec"]
            for c in pod.get("initContainers", []) + pod["containers"]:
                yield f"{obj['kind']} {obj['metadata']['name']} {c['name']}", c


def test_rendered_kube_prometheus_stack(loki_bundle: Bundle) -> None:
    objs = helm_template(rel(loki_bundle, "kube-prometheus-stack"))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], []).append(obj)
    (prom,) = by_kind["Prometheus"]
    assert prom["spec"]["retention"] == "7d"
    claim = prom["spec"]["storage"]["volumeClaimTemplate"]["spec"]
    assert (claim["storageClassName"], claim["resources"]["requests"]["storage"]) == (
        "local-path", "10Gi")
    assert prom["spec"]["serviceMonitorNamespaceSelector"] == {}
    assert prom["spec"]["podMonitorSelector"] == {}
    (pvc,) = by_kind["PersistentVolumeClaim"]
    assert (pvc["spec"]["storageClassName"], pvc["spec"]["resources"]["requests"]["storage"]
            ) == ("local-path", "5Gi")
    assert "Alertmanager" not in by_kind
    assert not [s for s in by_kind["Secret"] if s["metadata"]["name"].endswith("-grafana")]
    endpoints = {e["metadata"]["name"]: e["subsets"][0] for e in by_kind["Endpoints"]}
    ports = {name.rsplit("-", 1)[-1]: (s["addresses"], s["ports"][0]["port"])
             for name, s in endpoints.items()}
    assert ports == {"manager": ([{"ip": "203.0.113.20"}], 10257),
                     "scheduler": ([{"ip": "203.0.113.20"}], 10259),
                     "proxy": ([{"ip": "203.0.113.20"}], 10249)}
    for name, container in containers(objs):
        resources = container.get("resources") or {}
        assert resources.get("requests") and resources.get("limits"), name


@pytest.mark.parametrize("name", ["loki", "alloy"])
def test_rendered_loki_and_alloy(loki_bundle: Bundle, name: str) -> None:
    objs = helm_template(rel(loki_bundle, name))
    for label, container in containers(objs):
        resources = container.get("resources") or {}
        assert resources.get("requests") and resources.get("limits"), label
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, label
    if name == "loki":
        (service,) = [o for o in objs if o["kind"] == "Service"
                      and o["metadata"]["name"] == "loki"]
        assert {p["port"] for p in service["spec"]["ports"]} >= {3100}
