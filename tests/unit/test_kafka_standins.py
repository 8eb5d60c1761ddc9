"""kafka.deploy through the STAND-IN kubectl and helm (tests/standins/: no cluster here).

Our real layer's steps, facts and commands, on a fresh K3s: empty to converged, a no-op
second run with its reads counted, the PodMonitor left out with one note while the
monitoring CRDs are missing, a Kafka that never becomes Ready named with Strimzi's
message, and the password (a canary) only ever on stdin.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks import kafka
from tasks.cluster.kube import Tools
from tasks.engine.report import Status
from tasks.engine.step import Step
from tasks.stack.render import Document, Release
from tests.standins.harness import Standins, chart_archive
from tests.unit.cluster_catalog import ToolsTarget, session

CANARY = "canary-" + "9b3e07d2c4a1"
PASSWORD = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "app-client-password", "namespace": "kafka",
                         "labels": {"app.kubernetes.io/part-of": "k3s-vps-platform"}},
            "stringData": {"password": CANARY}}
STEPS = ["kafka-namespace", "kafka-network-policy", "strimzi", "kafka-password",
         "kafka-cluster", "kafka-topics", "kafka-user", "kafka-podmonitor"]
KAFKA_NAME = "kafka: Kafka my-cluster Ready (KRaft, dual-role; up to 15m)"


def layer_steps(tools: Tools, charts: Path) -> list[Step]:
    def archive(release: Release) -> Path:
        return chart_archive(charts, release.chart, release.version)

    target: Any = ToolsTarget(tools)
    docs = [Document("secrets/secret-kafka.sops.yaml", PASSWORD)]
    return kafka.steps(session(), target, docs, archive=archive)


def run(standins: Standins, tools: Tools, steps: Sequence[Step]
        ) -> tuple[bool, list[tuple[str, Status, list[str]]], str]:
    done = standins.converge(tools, steps)
    return done.ok, [(o.step_id, o.status, o.details) for o in done.summary.outcomes], done.text


def test_empty_to_converged_then_nothing_to_do(standins: Standins, tmp_path: Path) -> None:
    standins.install_crds("kube-prometheus-stack")  # monitoring.install ran before
    tools = standins.tools()
    steps = layer_steps(tools, tmp_path / "charts")
    ok, outcomes, text = run(standins, tools, steps)
    assert ok, text
    assert [(i, s) for i, s, _ in outcomes] == [(i, Status.CHANGED) for i in STEPS]
    assert sorted(standins.releases()) == ["kafka/strimzi"]
    release = standins.releases()["kafka/strimzi"].current
    assert (release.chart, release.version, release.status) == (
        "strimzi-kafka-operator", "0.47.0", "deployed")
    objects = standins.objects()
    for key in ("Namespace/-/kafka", "NetworkPolicy/kafka/my-cluster-kafka-ingress",
                "Secret/kafka/app-client-password", "Kafka/kafka/my-cluster",
                "KafkaNodePool/kafka/dual-role", "KafkaUser/kafka/app-client",
                "KafkaTopic/kafka/travel-proposal.completed",
                "PodMonitor/kafka/my-cluster-kafka-exporter"):
        assert key in objects, sorted(objects)
    assert len(standins.objects("KafkaTopic")) == 6
    assert objects["Namespace/-/kafka"]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
    # what the layer waited for, in order, each by its own condition
    waits = [c.line for c in standins.calls("kubectl") if c.args[:1] == ("wait",)]
    assert [w.split(" --timeout=")[1].split(" ")[:2] for w in waits] == [
        ["900s", "kafka.kafka.strimzi.io/my-cluster"],
        ["180s", "kafkatopic.kafka.strimzi.io/travel-generation.progress"],
        ["180s", "kafkauser.kafka.strimzi.io/app-client"]]
    # the custom resources were applied only once the chart had brought their CRDs
    lines = [c.line for c in standins.calls() if c.rc == 0
             and (c.args[:1] == ("upgrade",) or c.args[:2] == ("apply", "--server-side"))]
    assert lines[0].startswith("kubectl apply") and lines[2].startswith("helm upgrade")
    assert len(lines) == 8  # one write per step

    standins.clear_calls()
    ok, outcomes, text = run(standins, tools, steps)
    assert ok, text
    assert {s for _, s, _ in outcomes} == {Status.OK}, text
    reads = sorted(c.line.split(" -")[0] for c in standins.calls())
    # a converged Kafka: one kubectl diff per step of objects, the release listed and its
    # values read; nothing written, nothing waited for
    assert reads == sorted(["kubectl diff"] * 7 + ["helm list", "helm get values strimzi"])


def test_without_the_monitoring_crds_the_podmonitor_waits_with_one_note(
        standins: Standins, tmp_path: Path) -> None:
    tools = standins.tools()
    steps = layer_steps(tools, tmp_path / "charts")
    for attempt in (1, 2):
        ok, outcomes, text = run(standins, tools, steps)
        assert ok, text
        assert outcomes[-1] == ("kafka-podmonitor", Status.OK, [kafka.PODMONITOR_MISSING])
        assert text.count("PodMonitor left out") == 1
        changed = [i for i, s, _ in outcomes if s is Status.CHANGED]
        assert changed == (STEPS[:-1] if attempt == 1 else [])
    assert "PodMonitor/kafka/my-cluster-kafka-exporter" not in standins.objects()
    standins.install_crds("kube-prometheus-stack")  # then monitoring.install, and again:
    ok, outcomes, text = run(standins, tools, steps)
    assert ok, text
    assert [(i, s) for i, s, _ in outcomes if s is not Status.OK] == [
        ("kafka-podmonitor", Status.CHANGED)]


STRIMZI_TIMEOUT = ("Exceeded timeout of 300000ms while waiting for Pods resource"
                   " my-cluster-dual-role-0 in namespace kafka to be ready")


def test_a_kafka_that_never_becomes_ready_is_named_with_strimzis_message(
        standins: Standins, tmp_path: Path) -> None:
    standins.install_crds("kube-prometheus-stack")
    standins.inject(not_ready={"Kafka/kafka/my-cluster": STRIMZI_TIMEOUT})
    tools = standins.tools()
    steps = layer_steps(tools, tmp_path / "charts")
    expected = (f"{KAFKA_NAME}: verification: exit 1: Kafka kafka/my-cluster is not Ready:"
                f" {STRIMZI_TIMEOUT} (kubectl -n kafka describe pod my-cluster-dual-role-0)")
    ok, outcomes, text = run(standins, tools, steps)
    assert not ok
    assert outcomes[4] == ("kafka-cluster", Status.FAILED, [expected])
    assert [s for _, s, _ in outcomes[5:]] == [Status.SKIPPED] * 3
    assert f"- {expected}\n" in text
    live = standins.object("Kafka/kafka/my-cluster")
    assert live is not None and live["status"]["conditions"][0]["type"] == "NotReady"
    # the next run: applied already, still not Ready: it waits again and says why again
    standins.clear_calls()
    ok, outcomes, _ = run(standins, tools, steps)
    assert not ok
    assert outcomes[4] == ("kafka-cluster", Status.FAILED, [expected])
    assert [c.args[:2] for c in standins.calls("kubectl") if c.args[0] != "diff"] == [
        ("wait", "--for=condition=Ready")]
    # Strimzi gets there: the Kafka is Ready as it is, the run converges the rest
    standins.clear_injections()
    ok, outcomes, text = run(standins, tools, steps)
    assert ok, text
    assert [(i, s) for i, s, _ in outcomes][4:] == [
        ("kafka-cluster", Status.OK), ("kafka-topics", Status.CHANGED),
        ("kafka-user", Status.CHANGED), ("kafka-podmonitor", Status.CHANGED)]


def test_a_user_whose_password_secret_strimzi_cannot_read_says_so(
        standins: Standins, tmp_path: Path) -> None:
    message = "Secret app-client-password with requested user password does not exist."
    standins.inject(not_ready={"KafkaUser/kafka/app-client": message})
    tools = standins.tools()
    ok, outcomes, _ = run(standins, tools, layer_steps(tools, tmp_path / "charts"))
    assert not ok
    assert outcomes[6] == ("kafka-user", Status.FAILED, [
        f"kafka: KafkaUser app-client Ready (up to 3m): verification: exit 1:"
        f" KafkaUser kafka/app-client is not Ready: {message}"])


def test_the_password_canary_travels_on_stdin_only(standins: Standins, tmp_path: Path) -> None:
    tools = standins.tools()
    ok, _, text = run(standins, tools, layer_steps(tools, tmp_path / "charts"))
    assert ok, text
    reached = standins.carried_on_stdin_only(CANARY, text)  # only ever on stdin
    # read with every batch of facts before it was applied (each earlier change re-reads
    # the later steps), applied once, read again to verify: always kubectl, on stdin
    assert {c.args[:2] for c in reached} == {("diff", "--server-side"),
                                             ("apply", "--server-side")}
    assert [c.args[0] for c in reached].count("apply") == 1
    assert reached[-1].args[0] == "diff"
