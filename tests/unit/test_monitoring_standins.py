"""monitoring.install, empty to converged, through the STAND-IN kubectl and helm
(tests/standins/: no cluster here). Our real layer's steps, facts and commands; the chart a
tiny archive of the pinned name and version whose release makes what the checks read
(Prometheus's Service, Grafana's and Prometheus's claims); Prometheus's answer through
the service proxy the targets of fixtures/monitoring/targets.json. Then a second run:
nothing changes, and its reads counted. A down target and a Pending claim are named; the
Grafana admin canary password never leaves stdin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks import monitoring
from tasks.cluster.kube import Tools
from tasks.engine.report import Status
from tasks.engine.step import Step
from tasks.stack.render import Document, Release
from tests.standins.harness import Standins, chart_archive
from tests.unit.cluster_catalog import ToolsTarget, session

CANARY = "canary-" + "9b41d07e3ac5"
FIXTURES = Path(__file__).parent / "fixtures" / "monitoring"
PROMETHEUS = "kube-prometheus-stack-prometheus"
PROMETHEUS_PVC = f"prometheus-{PROMETHEUS}-db-prometheus-{PROMETHEUS}-0"
GRAFANA_SECRET = {
    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
    "metadata": {"name": "grafana-admin", "namespace": "monitoring",
                 "labels": {"app.kubernetes.io/part-of": "k3s-vps-platform",
                            "app.kubernetes.io/managed-by": "stack"}},
    "stringData": {"admin-user": "admin", "admin-password": CANARY},
}


def claim(name: str, size: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "monitoring"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                     "resources": {"requests": {"storage": size}}}}


# What the release makes that the checks read (the operator's claim included: the
# stand-in's controllers settle at once).
CHART_OBJECTS = [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": PROMETHEUS},
     "spec": {"ports": [{"name": "http-web", "port": 9090, "targetPort": 9090}]}},
    claim("kube-prometheus-stack-grafana", "5Gi"),
    claim(PROMETHEUS_PVC, "10Gi"),
]


def answers(*, all_up: bool) -> dict[str, Any]:
    data = json.loads((FIXTURES / "targets.json").read_text())
    if all_up:
        for item in data["data"]["activeTargets"]:
            item["health"], item["lastError"] = "up", ""
    # Prometheus writes compact JSON
    return {f"monitoring/{PROMETHEUS}:http-web": {
        "/api/v1/targets?state=active": json.dumps(data, separators=(",", ":"))}}


def layer(standins: Standins, tools: Tools, charts: Path, *, all_up: bool = True,
          target_seconds: int = 1) -> list[Step]:
    standins.configure(chart_objects={"kube-prometheus-stack": CHART_OBJECTS},
                       service_proxy=answers(all_up=all_up))

    def archive(release: Release) -> Path:
        return chart_archive(charts, release.chart, release.version)

    target: Any = ToolsTarget(tools)
    docs = [Document("secrets/secret-grafana.sops.yaml", GRAFANA_SECRET)]
    return monitoring.steps(session(), target, docs, archive=archive,
                            target_seconds=target_seconds)


def run(standins: Standins, tools: Tools, steps: list[Step]
        ) -> tuple[bool, list[tuple[str, Status]], str]:
    done = standins.converge(tools, steps)
    return done.ok, done.outcomes(), done.text


def assert_only_on_stdin(standins: Standins, text: str) -> None:
    """The Grafana admin canary password reached the cluster, only ever on stdin."""
    standins.carried_on_stdin_only(CANARY, text)


def test_empty_to_converged_then_nothing_to_do(standins: Standins, tmp_path: Path) -> None:
    tools = standins.tools()
    steps = layer(standins, tools, tmp_path / "charts")
    ok, outcomes, text = run(standins, tools, steps)
    assert ok, text
    assert outcomes == [
        ("monitoring-namespace", Status.CHANGED), ("monitoring-secrets", Status.CHANGED),
        ("monitoring-dashboards", Status.CHANGED), ("kube-prometheus-stack", Status.CHANGED),
        ("monitoring-servicemonitors", Status.CHANGED), ("monitoring-volumes", Status.OK),
        ("monitoring-targets", Status.OK)]
    (release,) = standins.releases().values()
    assert (release.namespace, release.name, release.current.chart,
            release.current.version) == ("monitoring", "kube-prometheus-stack",
                                         "kube-prometheus-stack", "85.4.0")
    assert release.current.values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    objects = standins.objects()
    for key in ("Namespace/-/monitoring", "Secret/monitoring/grafana-admin",
                "ConfigMap/monitoring/grafana-dashboard-k8s-cluster",
                "ConfigMap/monitoring/grafana-dashboard-node-exporter",
                "ConfigMap/monitoring/grafana-dashboard-traefik",
                "ConfigMap/monitoring/grafana-dashboard-applications",
                "ServiceMonitor/monitoring/traefik", "ServiceMonitor/monitoring/cert-manager"):
        assert key in objects, sorted(objects)
    assert objects[f"PersistentVolumeClaim/monitoring/{PROMETHEUS_PVC}"]["status"][
        "phase"] == "Bound"
    lines = [c.line for c in standins.calls()]
    # the Secret before the release, the ServiceMonitors after it (the CRDs come with it)
    secret = next(i for i, c in enumerate(standins.calls()) if b"grafana-admin" in c.stdin
                  and "apply" in c.args)
    upgrade = next(i for i, line in enumerate(lines) if line.startswith("helm upgrade"))
    monitors = next(i for i, c in enumerate(standins.calls())
                    if b"kind: ServiceMonitor" in c.stdin and "apply" in c.args)
    assert secret < upgrade < monitors
    assert_only_on_stdin(standins, text)

    standins.clear_calls()
    ok, outcomes, text = run(standins, tools, steps)
    assert ok, text
    assert {status for _, status in outcomes} == {Status.OK}, text
    reads = [c.line.split(" -")[0] for c in standins.calls()]
    # A converged monitoring layer: one kubectl read per component (namespace, Secret,
    # dashboards, ServiceMonitors), helm list and the release's values, the claims with
    # their events, Prometheus's targets.
    assert sorted(reads) == sorted([
        "kubectl diff", "kubectl diff", "kubectl diff", "kubectl diff",
        "helm list", "helm get values kube-prometheus-stack", "kubectl get",
        "kubectl get persistentvolumeclaims,events"])
    assert sorted(c.line for c in standins.calls() if c.line.startswith("kubectl get")) == [
        "kubectl get --raw '/api/v1/namespaces/monitoring/services/"
        f"{PROMETHEUS}:http-web/proxy/api/v1/targets?state=active'",
        "kubectl get persistentvolumeclaims,events -n monitoring -o json"]
    assert not [c for c in standins.calls() if "apply" in c.args or "upgrade" in c.args]


def test_a_target_that_stays_down_is_named(standins: Standins, tmp_path: Path) -> None:
    tools = standins.tools()
    ok, outcomes, text = run(standins, tools, layer(standins, tools, tmp_path / "charts",
                                                     all_up=False))
    assert not ok
    assert outcomes[-1] == ("monitoring-targets", Status.FAILED)
    assert ("monitoring: Prometheus targets up: verification: exit 1: Prometheus targets"
            " not up: scheduler (job kube-scheduler); scheduler (job kube-scheduler) down on"
            ' 10.0.2.15:10259: Get "https://10.0.2.15:10259/metrics": dial tcp'
            " 10.0.2.15:10259: connect: connection refused") in text
    # the wait read the targets again until its deadline (1 s here), then gave up
    waits = [c for c in standins.calls() if c.args[:2] == ("get", "--raw")]
    assert len(waits) >= 3  # the first read, the wait's tries, the verification's read


def test_a_claim_that_stays_pending_is_named_with_its_event(standins: Standins,
                                                            tmp_path: Path) -> None:
    tools = standins.tools()
    steps = layer(standins, tools, tmp_path / "charts")
    assert run(standins, tools, steps)[0]
    # Prometheus's claim is the operator's (its StatefulSet's), not the release's: helm
    # does not wait for it; the volumes step does.
    standins.inject(not_ready={f"PersistentVolumeClaim/monitoring/{PROMETHEUS_PVC}":
                               "no volume"})
    ok, outcomes, text = run(standins, tools, steps[:-1])
    assert ok is False and outcomes[-1] == ("monitoring-volumes", Status.FAILED), text
    assert [c.args[:2] for c in standins.calls() if c.args[0] == "wait"][-1:] == [
        ("wait", "--for=jsonpath={.status.phase}=Bound")]
    assert (f"PVC {PROMETHEUS_PVC} is still Pending after 300s: no event about it") in text
    standins.apply({"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": f"{PROMETHEUS_PVC}.187d4a1c3a9b0c1d",
                                 "namespace": "monitoring"},
                    "involvedObject": {"kind": "PersistentVolumeClaim", "name": PROMETHEUS_PVC,
                                       "namespace": "monitoring"},
                    "type": "Warning", "reason": "ProvisioningFailed",
                    "message": 'failed to provision volume with StorageClass "local-path":'
                               " no space left on device",
                    "lastTimestamp": "2026-12-02T01:12:41Z"}, "persistentvolume-controller")
    ok, outcomes, text = run(standins, tools, steps[:-1])
    assert not ok
    assert (f"PVC {PROMETHEUS_PVC} is still Pending after 300s: ProvisioningFailed: failed to"
            ' provision volume with StorageClass "local-path": no space left on device') in text
