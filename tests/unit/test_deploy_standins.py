"""deploy.all's own orchestration over every cluster layer (ingress.certs,
monitoring.install, kafka.deploy, flux.bootstrap, apps.deploy) through the STAND-IN kubectl
and helm, with real secrets (see stack_standins.py): empty to converged, a second run
that changes nothing, a resumed run after a failure in the middle, the whole-stack plan
before K3s exists and on a drifted cluster. Secret values never leave stdin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke.context import Context

from tasks import deploy
from tasks.cli import Session
from tasks.cluster import access
from tasks.engine.report import Status
from tasks.engine.target import LocalTarget
from tasks.model.model import Host
from tests.standins.harness import Call, Standins
from tests.unit.inventory_text import OPENSSH_HEADER
from tests.unit.secrets_repo import CANARIES
from tests.unit.stack_standins import Stack, stack

CONVERGED = {  # layer: its steps' ids, each ok on a converged cluster
    "ingress.certs": ["traefik", "cert-manager-namespace", "cert-manager", "cert-manager-api",
                      "cert-manager-issuers"],
    "monitoring.install": ["monitoring-namespace", "monitoring-secrets", "monitoring-dashboards",
                           "kube-prometheus-stack", "monitoring-servicemonitors",
                           "monitoring-volumes", "monitoring-targets"],
    "kafka.deploy": ["kafka-namespace", "kafka-network-policy", "strimzi", "kafka-password",
                     "kafka-cluster", "kafka-topics", "kafka-user", "kafka-podmonitor"],
    "flux.bootstrap": ["flux-namespace", "flux2", "flux-secrets", "flux-sync"],
    "apps.deploy": ["apps-namespace", "apps-secrets", "apps", "apps-certificate"],
}
RELEASES = ["app/apps", "cert-manager/cert-manager", "flux-system/flux2", "kafka/strimzi",
            "monitoring/kube-prometheus-stack"]
REAL_CLUSTER = access.cluster  # the fixture replaces it with the stand-in's kubeconfig
REPOSITORY_NOTE = "cluster not reachable yet: planned from the repository, not from facts"


@pytest.fixture
def st(standins: Standins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack(tmp_path, monkeypatch, standins) as made:
        yield made


def mutating(call: Call) -> bool:
    """A call that changes the cluster (a server-side dry run does not)."""
    verb = call.args[0]
    if call.binary == "helm":
        return verb in ("install", "upgrade", "rollback", "uninstall")
    return verb in ("apply", "create", "annotate", "label", "patch", "delete", "replace") \
        and not any(a.startswith("--dry-run") and a != "--dry-run=none" for a in call.args)


def layers(s: Session) -> list[tuple[str, str, int]]:
    return [(x.name, x.result, x.changes) for x in s.summary.layers]


def steps(s: Session, name: str) -> list[tuple[str, Status]]:
    (layer,) = [x for x in s.summary.layers if x.name == name]
    return [(o.step_id, o.status) for o in layer.outcomes]


def upgraded(calls: list[Call]) -> list[str]:
    """The releases helm installed or upgraded, in order."""
    return [next(a for a in c.args[1:] if not a.startswith("-")) for c in calls
            if c.binary == "helm" and c.args[0] == "upgrade"]


def assert_secrets_only_on_stdin(st: Stack, text: str) -> None:
    values = [*CANARIES, *st.secret_values()]
    assert len(values) > len(CANARIES)  # the generated ones too (passwords, keys, token)
    calls = st.standins.calls()
    assert any(any(v.encode() in c.stdin for v in values) for c in calls)
    for value in values:
        assert value not in text
        for call in calls:
            assert value not in " ".join(call.argv), call.line
            assert value not in json.dumps(call.env), call.line
            assert value not in call.stdout and value not in call.stderr, call.line


def test_the_whole_stack_from_empty_to_converged_a_run_that_changes_nothing_and_a_plan(
        st: Stack) -> None:
    s, text = st.run()
    assert layers(s) == [("ingress.certs", "changed", 4), ("monitoring.install", "changed", 5),
                         ("kafka.deploy", "changed", 8), ("flux.bootstrap", "changed", 4),
                         ("apps.deploy", "changed", 3)], text
    assert sorted(st.standins.releases()) == RELEASES
    for key in ("ClusterIssuer/-/letsencrypt-prod", "Kafka/kafka/my-cluster",
                "PodMonitor/kafka/my-cluster-kafka-exporter", "Secret/monitoring/grafana-admin",
                "Kustomization/flux-system/flux-system", "Secret/app/kafka-app-client",
                "Certificate/app/api-gateway-tls"):
        assert key in st.standins.objects(), key
    assert upgraded(st.standins.calls()) == ["cert-manager", "kube-prometheus-stack",
                                             "strimzi", "flux2", "apps"]
    assert_secrets_only_on_stdin(st, text)

    st.standins.clear_calls()
    s, text = st.run()
    assert {x.name: [o.step_id for o in x.outcomes] for x in s.summary.layers} == CONVERGED
    assert {o.status for o in s.summary.outcomes} == {Status.OK}, text
    assert layers(s) == [(name, "ok", 0) for name in CONVERGED]
    assert [c.line for c in st.standins.calls() if mutating(c)] == []
    # the tools are found once for the run, not once per layer
    assert [c.line for c in st.standins.calls() if c.args[:1] == ("version",)] == [
        "helm version --short"]
    assert text.splitlines()[-2].split() == ["total", "28", "steps:", "28", "ok", "ok", "0",
                                             text.splitlines()[-2].split()[-1]]
    assert_secrets_only_on_stdin(st, text)

    # then the plan of a drifted cluster: what would change, from facts; nothing changed
    st.standins.edit("ConfigMap/monitoring/grafana-dashboard-traefik",
                     {("data", "traefik.json"): "{}"}, manager=None)
    st.standins.clear_calls()
    before = st.standins.objects()
    s, text = st.run(check=True)
    assert layers(s) == [("ingress.certs", "ok", 0), ("monitoring.install", "planned", 1),
                         ("kafka.deploy", "ok", 0), ("flux.bootstrap", "ok", 0),
                         ("apps.deploy", "ok", 0)], text
    (planned,) = [o for o in s.summary.outcomes if o.status is Status.WOULD_CHANGE]
    assert (planned.step_id, planned.details) == (
        "monitoring-dashboards", ["update ConfigMap/monitoring/grafana-dashboard-traefik"])
    assert not any(o.from_repository for o in s.summary.outcomes)
    assert [c.line for c in st.standins.calls() if mutating(c)] == []
    assert st.standins.objects() == before


def test_a_run_resumes_after_a_failed_layer_and_redoes_nothing_before_it(st: Stack) -> None:
    st.standins.inject(helm_fail={"kafka/strimzi": "timed out waiting for the condition"})
    s, text = st.run()
    assert layers(s) == [("ingress.certs", "changed", 4), ("monitoring.install", "changed", 5),
                         ("kafka.deploy", "failed", 2), ("flux.bootstrap", "skipped", 0),
                         ("apps.deploy", "skipped", 0)], text
    assert steps(s, "kafka.deploy") == [
        ("kafka-namespace", Status.CHANGED), ("kafka-network-policy", Status.CHANGED),
        ("strimzi", Status.FAILED), ("kafka-password", Status.SKIPPED),
        ("kafka-cluster", Status.SKIPPED), ("kafka-topics", Status.SKIPPED),
        ("kafka-user", Status.SKIPPED), ("kafka-podmonitor", Status.SKIPPED)]
    rows = [line.split()[:2] + line.split()[-3:-1] for line in text.splitlines()
            if line.startswith(("flux.bootstrap", "apps.deploy"))]
    assert rows == [["flux.bootstrap", "(not", "skipped", "0"],
                    ["apps.deploy", "(not", "skipped", "0"]]
    assert "(not run: an earlier layer failed)" in text
    # the failed first install was rolled back (helm --rollback-on-failure uninstalls it)
    assert sorted(st.standins.releases()) == ["cert-manager/cert-manager",
                                              "monitoring/kube-prometheus-stack"]

    st.standins.clear_injections()
    st.standins.clear_calls()
    s, text = st.run()
    assert layers(s) == [("ingress.certs", "ok", 0), ("monitoring.install", "ok", 0),
                         ("kafka.deploy", "changed", 6), ("flux.bootstrap", "changed", 4),
                         ("apps.deploy", "changed", 3)], text
    assert steps(s, "kafka.deploy")[:3] == [
        ("kafka-namespace", Status.OK), ("kafka-network-policy", Status.OK),
        ("strimzi", Status.CHANGED)]
    calls = st.standins.calls()
    assert upgraded(calls) == ["strimzi", "flux2", "apps"]  # nothing of the earlier layers
    applied = [c.stdin.decode() for c in calls if c.binary == "kubectl" and mutating(c)]
    for text_of_apply in applied:
        for earlier in ("namespace: cert-manager", "namespace: monitoring", "kind: ClusterIssuer",
                        "name: kafka\n", "kind: NetworkPolicy"):
            assert earlier not in text_of_apply
    assert len(applied) == 10  # kafka 5, flux 3, apps 2: the steps that changed, once each
    assert sorted(st.standins.releases()) == RELEASES


def test_the_plan_before_k3s_exists_lists_every_layer_from_the_repository(
        st: Stack, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The real cluster access, reaching a first server without K3s: this machine (a
    LocalTarget as its connection), where /etc/rancher/k3s/k3s.yaml does not exist."""
    if Path(access.NODE_KUBECONFIG).exists():
        pytest.skip(f"{access.NODE_KUBECONFIG} exists here")
    monkeypatch.setattr(access, "cluster", REAL_CLUSTER)
    connected: list[str] = []

    def connect(self: Session, host: Host) -> Any:
        connected.append(host.name)
        return LocalTarget(name=host.name)

    monkeypatch.setattr(Session, "connect", connect)
    before = st.standins.objects()
    key = st.inventory.parent / "id_ed25519"
    key.write_text(OPENSSH_HEADER + "never used\n")
    st.inventory.write_text(st.inventory.read_text().replace("~/.ssh/id_ed25519", str(key)))
    deploy.all_(Context(), inventory=str(st.inventory), check=True, json=True,
                from_="ingress.certs")  # returns: exit 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert connected == ["vps1"]  # found out once; the later layers do not ask again
    assert (doc["mode"], doc["result"]) == ("check", "planned")
    assert [(x["name"], x["result"], x["planned_from"]) for x in doc["layers"]] == [
        (name, "planned", "repository") for name in CONVERGED]
    by_id = {s["id"]: s for x in doc["layers"] for s in x["steps"]}
    assert by_id["cert-manager"]["details"] == [
        "install cert-manager/cert-manager: chart cert-manager v1.13.1"
        " (values helm-values/cert-manager.yaml)"]
    assert by_id["kafka-topics"]["result"] == "planned"
    assert by_id["kafka-topics"]["details"] == [
        "create KafkaTopic/kafka/travel-generation.progress,"
        " KafkaTopic/kafka/travel-generation.completed,"
        " KafkaTopic/kafka/travel-enrichment.progress,"
        " KafkaTopic/kafka/travel-enrichment.completed, KafkaTopic/kafka/travel-proposal.progress,"
        " KafkaTopic/kafka/travel-proposal.completed, then wait until ready"]
    assert by_id["monitoring-targets"]["details"] == [
        "check: monitoring: Prometheus targets up"]
    assert "flux-secrets" not in by_id  # Flux's keys are not generated in plan mode
    assert not (st.repo.root / "secrets" / "secret-flux.sops.yaml").exists()
    assert err.count(f"{REPOSITORY_NOTE}; vps1: K3s is not installed yet") == 5  # per layer
    assert f"* {REPOSITORY_NOTE}" in err  # under the table
    assert out.startswith("{")  # the document alone on stdout; the people's lines on stderr
    assert "== ingress.certs" in err and "== ingress.certs" not in out
    assert [c.line for c in st.standins.calls() if c.binary == "kubectl" or mutating(c)] == []
    assert st.standins.objects() == before
