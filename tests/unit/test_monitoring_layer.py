"""monitoring.install as data: its steps in order, what they wait for, and how a target
that is not up or a volume that stays Pending reads. Facts in, commands out.

The answers are in tests/unit/fixtures/monitoring/, written in the shapes the APIs give:
``targets.json`` is Prometheus's ``/api/v1/targets`` (prometheus/prometheus
docs/querying/api.md, "Targets": status, data.activeTargets[] with labels, scrapePool,
scrapeUrl, lastError, health), with the jobs, pools and labels kube-prometheus-stack
85.4.0's ServiceMonitors give on a one-node K3s (the scheduler down, and an application
pod of the kubernetes-pods job down); ``pvcs-events.json`` is ``kubectl get
persistentvolumeclaims,events -o json`` (one List of both kinds, as the real kubectl
1.33.9 prints it): Grafana's claim Bound, Prometheus's Pending with two events.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks import monitoring
from tasks.cluster.kube import ClusterFactError, Tools
from tasks.engine.errors import UserError
from tasks.engine.facts import Facts, Raw
from tasks.monitoring import names, targets
from tasks.monitoring.volumes import Expected, VolumesStep, parse_claims
from tests.unit.cluster_catalog import SECRET, ToolsTarget, session
from tests.unit.platform_ctx import inventory

TOOLS = Tools("/opt/kubectl", "/opt/helm", helm_major=4)
ARCHIVE = lambda r: Path(f"/charts/{r.chart}-{r.version}.tgz")  # noqa: E731
FIXTURES = Path(__file__).parent / "fixtures" / "monitoring"
PROMETHEUS_PVC = ("prometheus-kube-prometheus-stack-prometheus-db-"
                  "prometheus-kube-prometheus-stack-prometheus-0")
TARGETS_PATH = ("/api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:"
                "http-web/proxy/api/v1/targets?state=active")


def recorded(name: str) -> str:
    return (FIXTURES / name).read_text()


def layer(secrets: Any = (SECRET,), **changes: Any) -> list[Any]:
    from tasks.cli import Session
    from tasks.model.fields import build
    from tasks.model.load import Loaded
    from tasks.model.model import Inventory

    s = session()
    if changes:
        inv, errors = build(Inventory, inventory(**changes))
        assert errors == [], errors
        s = Session(Loaded(inv, Path("/nonexistent/inventory.yaml")))
    target: Any = ToolsTarget(TOOLS)
    return monitoring.steps(s, target, list(secrets) if secrets is not None else None,
                            archive=ARCHIVE)


# The steps ------------------------------------------------------------------------------

def test_monitoring_install_steps_in_order() -> None:
    steps = layer()
    assert [s.id for s in steps] == [
        "monitoring-namespace", "monitoring-secrets", "monitoring-dashboards",
        "kube-prometheus-stack", "monitoring-servicemonitors", "monitoring-volumes",
        "monitoring-targets"]
    assert [d.name for d in steps[0].docs] == ["monitoring"]
    assert steps[1].diff.exec is not None  # the decrypted Secret goes on stdin...
    assert "not-a-real-secret" not in steps[1].diff.command  # ...never into a script
    assert [d.name for d in steps[2].docs] == [
        "grafana-dashboard-k8s-cluster", "grafana-dashboard-node-exporter",
        "grafana-dashboard-traefik", "grafana-dashboard-applications"]
    release = steps[3].release
    assert (release.chart, release.version, release.namespace, steps[3].wait_seconds) == (
        "kube-prometheus-stack", "85.4.0", "monitoring", 900)
    assert [(d.kind, d.namespace, d.name) for d in steps[4].docs] == [
        ("ServiceMonitor", "monitoring", "traefik"),
        ("ServiceMonitor", "monitoring", "cert-manager")]
    assert [(e.name, e.storage_class) for e in steps[5].expected] == [
        (PROMETHEUS_PVC, "local-path"), ("kube-prometheus-stack-grafana", "local-path")]
    assert steps[6].fact.command == f"/opt/kubectl get --raw '{TARGETS_PATH}'"


def test_plan_mode_without_the_grafana_secret_leaves_that_step_out() -> None:
    assert "monitoring-secrets" not in [s.id for s in layer(secrets=None)]


def test_loki_and_alloy_when_the_inventory_asks() -> None:
    steps = layer(monitoring={"loki": True})
    assert [s.id for s in steps] == [
        "monitoring-namespace", "monitoring-secrets", "monitoring-dashboards",
        "kube-prometheus-stack", "loki", "alloy", "monitoring-servicemonitors",
        "monitoring-volumes", "monitoring-targets"]
    assert "grafana-datasource-loki" in [d.name for d in steps[2].docs]
    assert [(s.release.chart, s.release.version, s.wait_seconds) for s in steps[4:6]] == [
        ("loki", "18.11.0", 600), ("alloy", "1.11.1", 600)]


def test_the_names_the_chart_gives_with_our_values() -> None:
    (kps,) = [s.release for s in layer() if s.id == "kube-prometheus-stack"]
    assert names.fullname(kps) == "kube-prometheus-stack"
    assert (names.prometheus(kps), names.prometheus_port(kps)) == (
        "kube-prometheus-stack-prometheus", "http-web")
    assert names.prometheus_claim(kps) == PROMETHEUS_PVC
    assert names.grafana_claim(kps) == "kube-prometheus-stack-grafana"
    import dataclasses
    other = dataclasses.replace(kps, name="metrics", values={"fullnameOverride": "a" * 30})
    assert names.fullname(other) == "a" * 26
    assert names.fullname(dataclasses.replace(kps, name="metrics", values={})) == \
        "metrics-kube-prometheus-st"  # the chart cuts fullname to 26 characters


# Prometheus's targets --------------------------------------------------------------------

def test_recorded_targets_parsed() -> None:
    found = targets.parse(recorded("targets.json"))
    assert len(found) == 16
    kubelet = [(t.path, t.instance, t.pool) for t in found if t.job == "kubelet"]
    assert kubelet == [
        ("/metrics", "10.0.2.15:10250",
         "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/0"),
        ("/metrics/cadvisor", "10.0.2.15:10250",
         "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/1"),
        ("/metrics/probes", "10.0.2.15:10250",
         "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/2")]
    assert {t.job for t in found if t.health == "down"} == {"kube-scheduler", "kubernetes-pods"}


def test_the_target_down_is_named_with_prometheus_own_error() -> None:
    assert targets.problems(targets.parse(recorded("targets.json"))) == [
        "Prometheus targets not up: scheduler (job kube-scheduler)",
        'scheduler (job kube-scheduler) down on 10.0.2.15:10259: Get'
        ' "https://10.0.2.15:10259/metrics": dial tcp 10.0.2.15:10259: connect: connection'
        " refused"]  # the application pod of kubernetes-pods is not this layer's


def without(data: dict[str, Any], job: str) -> str:
    active = data["data"]["activeTargets"]
    data["data"]["activeTargets"] = [t for t in active if t["labels"]["job"] != job]
    return json.dumps(data)


def test_all_up_then_missing_and_unknown_targets() -> None:
    data = json.loads(recorded("targets.json"))
    for item in data["data"]["activeTargets"]:
        item["health"], item["lastError"] = "up", ""
    assert targets.problems(targets.parse(json.dumps(data))) == []
    data["data"]["activeTargets"][2]["health"] = "unknown"  # cAdvisor: not scraped yet
    cert_manager = next(t for t in data["data"]["activeTargets"]
                        if t["labels"]["job"] == "cert-manager")
    cert_manager["health"], cert_manager["lastError"] = "down", "server returned HTTP status" \
        " 503 Service Unavailable"
    assert targets.problems(targets.parse(without(data, "traefik"))) == [
        "Prometheus targets not up: Traefik (job traefik), cAdvisor (job kubelet"
        " /metrics/cadvisor), job cert-manager",
        "Traefik: no target of job traefik in Prometheus (is its ServiceMonitor applied, and"
        " its Service there?)",
        "cAdvisor (job kubelet /metrics/cadvisor) not scraped yet on 10.0.2.15:10250",
        "job cert-manager down on 10.42.0.8:9402: server returned HTTP status 503 Service"
        " Unavailable"]


@pytest.mark.parametrize(("stderr", "silent"), [
    # the real kubectl 1.33.9 against a local API answering 404 and 503 on the proxy path
    ('Error from server (NotFound): services "kube-prometheus-stack-prometheus" not found',
     '(NotFound): services "kube-prometheus-stack-prometheus" not found'),
    ('Error from server (ServiceUnavailable): no endpoints available for service'
     ' "kube-prometheus-stack-prometheus"',
     '(ServiceUnavailable): no endpoints available for service'
     ' "kube-prometheus-stack-prometheus"'),
])
def test_prometheus_not_answering_yet_is_waited_for(stderr: str, silent: str) -> None:
    step = layer()[-1]
    facts = Facts({step.fact.key: Raw("", 1, stderr)})
    (change,) = step.plan(facts)
    assert change.summary == ("wait for Prometheus's targets (Prometheus does not answer"
                              f" through the API server: {silent})")
    (wait,) = change.commands
    assert wait.argv == (sys.executable, str(monitoring.TARGETS), "300", "--",
                         "/opt/kubectl", "get", "--raw", TARGETS_PATH)
    assert (wait.timeout, wait.ok_codes) == (360, (0, 1))  # the deadline: verify names them
    assert step.verify(facts) == [f"Prometheus does not answer through the API server: {silent}"]


def test_an_unreachable_api_is_an_error_not_a_silent_prometheus() -> None:
    raw = Raw("", 1, "The connection to the server 127.0.0.1:40123 was refused - did you"
                     " specify the right host or port?")
    with pytest.raises(ClusterFactError, match="the Kubernetes API is unreachable"):
        monitoring.read_targets(raw)
    raw = Raw("", 1, "error: You must be logged in to the server (Unauthorized)")
    with pytest.raises(ClusterFactError, match=r"refused our credentials \(Unauthorized\)"):
        monitoring.read_targets(raw)


def test_converged_targets_plan_nothing() -> None:
    step = layer()[-1]
    data = json.loads(recorded("targets.json"))
    for item in data["data"]["activeTargets"]:
        item["health"] = "up"
    assert step.plan(Facts({step.fact.key: Raw(json.dumps(data), 0)})) == []


def test_the_targets_wait_tries_again_until_up_and_stops_at_its_deadline(
        tmp_path: Path) -> None:
    down = recorded("targets.json")
    data = json.loads(down)
    for item in data["data"]["activeTargets"]:
        item["health"], item["lastError"] = "up", ""
    (tmp_path / "up.json").write_text(json.dumps(data))
    (tmp_path / "down.json").write_text(down)
    flag = tmp_path / "seen"
    script = (f"[ -e {flag} ] && cat {tmp_path / 'up.json'} ||"
              f" {{ touch {flag}; cat {tmp_path / 'down.json'}; }}")
    program = [sys.executable, str(monitoring.TARGETS)]
    proc = subprocess.run([*program, "20", "--", "sh", "-c", script], capture_output=True,
                          text=True, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")  # down on the first try, up on the second
    proc = subprocess.run([*program, "1", "--", "cat", str(tmp_path / "down.json")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == "Prometheus targets not up: scheduler (job" \
                                          " kube-scheduler)"


# Volumes ------------------------------------------------------------------------------

def volumes(stdout: str, rc: int = 0, stderr: str = "") -> tuple[VolumesStep, Facts]:
    step = layer()[5]
    assert isinstance(step, VolumesStep)
    return step, Facts({step.claims.key: Raw(stdout, rc, stderr)})


def test_recorded_claims_with_their_latest_event() -> None:
    claims = parse_claims(Raw(recorded("pvcs-events.json"), 0), "monitoring")
    assert [(c.name, c.phase, c.storage_class, c.size) for c in claims.values()] == [
        ("kube-prometheus-stack-grafana", "Bound", "local-path", "5Gi"),
        (PROMETHEUS_PVC, "Pending", "local-path", "10Gi")]
    assert claims[PROMETHEUS_PVC].reason == (
        'ProvisioningFailed: failed to provision volume with StorageClass "local-path":'
        " failed to create volume pvc-7d2b9e61-54a8-4c1d-b6f3-2e9a0c4d8f21: create process"
        " timeout after 120 seconds")
    assert claims["kube-prometheus-stack-grafana"].reason == ""


def test_a_pending_claim_is_waited_for_then_named_with_its_event() -> None:
    step, facts = volumes(recorded("pvcs-events.json"))
    (change,) = step.plan(facts)
    assert change.summary == (
        f"wait for PVC {PROMETHEUS_PVC} Bound (Pending: ProvisioningFailed: failed to"
        ' provision volume with StorageClass "local-path": failed to create volume'
        " pvc-7d2b9e61-54a8-4c1d-b6f3-2e9a0c4d8f21: create process timeout after 120"
        " seconds)")
    assert [(" ".join(c.argv), c.ok_codes) for c in change.commands] == [
        ("/opt/kubectl wait --for=jsonpath={.status.phase}=Bound --timeout=300s"
         f" pvc/{PROMETHEUS_PVC} -n monitoring", (0, 1))]
    assert step.verify(facts) == [
        f"PVC {PROMETHEUS_PVC} is still Pending after 300s: ProvisioningFailed: failed to"
        ' provision volume with StorageClass "local-path": failed to create volume'
        " pvc-7d2b9e61-54a8-4c1d-b6f3-2e9a0c4d8f21: create process timeout after 120"
        " seconds"]


def test_claims_not_made_yet_are_waited_for_to_exist_then_bound() -> None:
    empty = json.dumps({"apiVersion": "v1", "items": [], "kind": "List",
                        "metadata": {"resourceVersion": ""}})
    step, facts = volumes(empty)
    (change,) = step.plan(facts)
    assert [" ".join(c.argv) for c in change.commands] == [
        f"/opt/kubectl wait --for=create --timeout=300s pvc/{PROMETHEUS_PVC} -n monitoring",
        "/opt/kubectl wait --for=jsonpath={.status.phase}=Bound --timeout=300s"
        f" pvc/{PROMETHEUS_PVC} -n monitoring",
        "/opt/kubectl wait --for=create --timeout=300s pvc/kube-prometheus-stack-grafana"
        " -n monitoring",
        "/opt/kubectl wait --for=jsonpath={.status.phase}=Bound --timeout=300s"
        " pvc/kube-prometheus-stack-grafana -n monitoring"]
    assert step.verify(facts)[1] == ("PVC kube-prometheus-stack-grafana does not exist after"
                                     " 300s (is the pod that claims it there?)")


def test_every_claim_of_the_namespace_must_be_bound_and_ours_on_local_path() -> None:
    data = json.loads(recorded("pvcs-events.json"))
    data["items"][1]["status"] = {"phase": "Bound"}
    loki = json.loads(json.dumps(data["items"][0]))
    loki["metadata"]["name"], loki["status"] = "storage-loki-0", {"phase": "Pending"}
    data["items"].append(loki)
    step, facts = volumes(json.dumps(data))
    assert step.verify(facts) == ["PVC storage-loki-0 is still Pending after 300s: no event"
                                  " about it"]
    data["items"].pop()
    data["items"][0]["spec"]["storageClassName"] = "standard"
    step, facts = volumes(json.dumps(data))
    with pytest.raises(UserError, match="PVC kube-prometheus-stack-grafana is on StorageClass"
                                        " standard, not local-path"):
        step.plan(facts)


def test_an_api_error_reading_claims_is_named() -> None:
    step, facts = volumes("", 1, "error: You must be logged in to the server (the server has"
                                 " asked for the client to provide credentials)")
    with pytest.raises(UserError, match="reading the PVCs of namespace monitoring: the API"
                                        " refused our credentials"):
        step.plan(facts)


def test_expected_claims_follow_the_values() -> None:
    steps = layer()
    kps = steps[3].release
    assert monitoring.expected_claims(kps) == [
        Expected(PROMETHEUS_PVC, "local-path",
                 "helm-values/kube-prometheus-stack.yaml: prometheus.prometheusSpec.storageSpec"
                 ".volumeClaimTemplate.spec.storageClassName"),
        Expected("kube-prometheus-stack-grafana", "local-path",
                 "helm-values/kube-prometheus-stack.yaml: grafana.persistence.storageClassName")]


# The Grafana admin Secret ----------------------------------------------------------------

class FakeStore:
    def documents(self, name: str) -> list[dict[str, Any]]:
        assert name == "secret-grafana"
        return [{"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "grafana-admin", "namespace": "monitoring"},
                 "stringData": {"admin-user": "admin", "admin-password": "not-a-secret"}}]


def test_the_grafana_secret_is_read_decrypted_from_its_sops_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.secrets.store import SecretStore

    monkeypatch.setattr(SecretStore, "open", classmethod(lambda cls, loaded: FakeStore()))
    (doc,) = monitoring.grafana_secret(session())  # type: ignore[misc]
    assert (doc.label, doc.kind, doc.namespace, doc.name) == (
        "secrets/secret-grafana.sops.yaml: Secret grafana-admin", "Secret", "monitoring",
        "grafana-admin")


def test_without_the_grafana_secret_plan_mode_says_so_and_a_run_stops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from tasks.engine.report import Reporter
    from tasks.secrets.store import SecretStore

    def missing(cls: Any, loaded: Any) -> Any:
        raise UserError("secrets/secret-grafana.sops.yaml: missing: run inv secrets.init")

    monkeypatch.setattr(SecretStore, "open", classmethod(missing))
    s = session()
    with pytest.raises(UserError, match=r"secret-grafana\.sops\.yaml: missing"):
        monitoring.grafana_secret(s)
    out = io.StringIO()
    s.check, s.reporter = True, Reporter(out)
    assert monitoring.grafana_secret(s) is None
    assert "secrets/secret-grafana.sops.yaml: missing: run inv secrets.init (the Grafana" \
           " admin Secret is not planned)" in out.getvalue()
