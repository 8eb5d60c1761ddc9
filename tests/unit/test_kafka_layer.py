"""kafka.deploy as data: which steps, in which order, what they wait for, and how a
Strimzi object that is not Ready reads. Facts in (as kubectl and kdiff print them),
commands out; the status shapes are Strimzi's own, with their sources."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks import kafka
from tasks.cluster import kdiff
from tasks.cluster.kube import Tools
from tasks.engine.errors import UserError
from tasks.engine.facts import Facts, Raw
from tasks.engine.report import Reporter
from tests.unit.cluster_catalog import SECRET, ToolsTarget, session

TOOLS = Tools("/opt/kubectl", "/opt/helm", helm_major=4)
ARCHIVE = lambda r: Path(f"/charts/{r.chart}-{r.version}.tgz")  # noqa: E731
TOPICS = ["travel-generation.progress", "travel-generation.completed",
          "travel-enrichment.progress", "travel-enrichment.completed",
          "travel-proposal.progress", "travel-proposal.completed"]


def steps(secrets: Any = (SECRET,)) -> list[Any]:
    return kafka.steps(session(), ToolsTarget(TOOLS),  # type: ignore[arg-type]
                       None if secrets is None else list(secrets), archive=ARCHIVE)


def test_kafka_deploy_steps_in_order_after_the_chart_that_brings_their_crds() -> None:
    plan = steps()
    assert [(s.id, s.name) for s in plan] == [
        ("kafka-namespace", "kafka: namespace"),
        ("kafka-network-policy", "kafka: NetworkPolicy guarding the brokers (from app only)"),
        ("strimzi", "kafka: Strimzi operator chart 0.47.0"),
        ("kafka-password", "kafka: app-client password Secret"),
        ("kafka-cluster", "kafka: Kafka my-cluster Ready (KRaft, dual-role; up to 15m)"),
        ("kafka-topics", "kafka: 6 KafkaTopics Ready (up to 3m)"),
        ("kafka-user", "kafka: KafkaUser app-client Ready (up to 3m)"),
        ("kafka-podmonitor", "kafka: PodMonitor of the Kafka Exporter (after"
                             " monitoring.install)")]
    objects = {s.id: [f"{d.kind}/{d.name}" for d in s.docs] for s in plan if hasattr(s, "docs")}
    assert objects == {
        "kafka-namespace": ["Namespace/kafka"],
        "kafka-network-policy": ["NetworkPolicy/my-cluster-kafka-ingress"],
        "kafka-password": ["Secret/probe"],
        "kafka-cluster": ["Kafka/my-cluster", "KafkaNodePool/dual-role"],
        "kafka-topics": [f"KafkaTopic/{t}" for t in TOPICS],
        "kafka-user": ["KafkaUser/app-client"],
        "kafka-podmonitor": ["PodMonitor/my-cluster-kafka-exporter"]}
    release = plan[2].release
    assert (release.name, release.chart, release.version, release.namespace,
            release.values_source) == ("strimzi", "strimzi-kafka-operator", "0.47.0", "kafka",
                                       "helm-values/strimzi.yaml")
    assert plan[3].diff.exec is not None  # the password: argv + stdin, never a script
    assert "not-a-real-secret" not in plan[3].diff.command
    assert b"not-a-real-secret" in plan[3].diff.exec.stdin


def test_each_strimzi_object_is_waited_ready_by_its_own_condition() -> None:
    plan = {s.id: s for s in steps()}
    waits = {i: [(" ".join(c.argv), c.timeout, c.ok_codes) for c in s.waits]
             for i, s in plan.items() if getattr(s, "waits", ())}
    assert waits == {
        "kafka-cluster": [("/opt/kubectl wait --for=condition=Ready --timeout=900s"
                           " kafka.kafka.strimzi.io/my-cluster -n kafka", 930, (0, 1))],
        "kafka-topics": [("/opt/kubectl wait --for=condition=Ready --timeout=180s "
                          + " ".join(f"kafkatopic.kafka.strimzi.io/{t}" for t in TOPICS)
                          + " -n kafka", 210, (0, 1))],
        "kafka-user": [("/opt/kubectl wait --for=condition=Ready --timeout=180s"
                        " kafkauser.kafka.strimzi.io/app-client -n kafka", 210, (0, 1))]}
    # The node pool has no Ready condition in Strimzi 0.47: the Kafka's covers it.
    assert plan["kafka-cluster"].must_be_ready == ("Kafka/kafka/my-cluster",)
    assert plan["kafka-topics"].must_be_ready == tuple(f"KafkaTopic/kafka/{t}" for t in TOPICS)
    assert plan["kafka-user"].must_be_ready == ("KafkaUser/kafka/app-client",)
    assert plan["strimzi"].wait_seconds == 600  # helm --wait: the operator's Deployment


def test_plan_mode_without_the_secret_leaves_its_step_out() -> None:
    assert "kafka-password" not in [s.id for s in steps(None)]


def kafka_obj(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": kind,
            "metadata": {"name": name, "namespace": "kafka"}, "spec": {}}


def verify_with_live(step: Any, tmp_path: Path, statuses: dict[str, dict[str, Any]]) -> list[str]:
    """``step.verify`` on what kdiff.py (for real) says of live objects with ``statuses``
    (kind/name -> status; the object absent when not given)."""
    live, merged = tmp_path / "LIVE", tmp_path / "MERGED"
    live.mkdir(parents=True), merged.mkdir(parents=True)
    for doc in step.docs:
        name = f"kafka.strimzi.io.v1beta2.{doc.kind}.kafka.{doc.name}"
        (merged / name).write_text(yaml.safe_dump(doc.obj))
        status = statuses.get(f"{doc.kind}/{doc.name}")
        if status is not None:
            (live / name).write_text(yaml.safe_dump({**doc.obj, "status": status}))
    out = "".join(json.dumps(i) + "\n" for i in kdiff.compare(live, merged))
    result: list[str] = step.verify(Facts({step.diff.key: Raw(out, 0)}))
    return result


def not_ready(message: str, reason: str) -> dict[str, Any]:
    return {"conditions": [{"type": "NotReady", "status": "True", "reason": reason,
                            "message": message,
                            "lastTransitionTime": "2026-01-05T09:00:00.000Z"}],
            "observedGeneration": 1}


READY = {"conditions": [{"type": "Ready", "status": "True",
                         "lastTransitionTime": "2026-01-05T09:00:00.000Z"}],
         "observedGeneration": 1}
POOL = {"observedGeneration": 1, "nodeIds": [0], "clusterId": "x",
        "roles": ["broker", "controller"], "replicas": 1}


@pytest.mark.parametrize(("status", "line"), [
    # Strimzi 0.47 VertxUtil.waitFor + PodOperator ("Pods"): the operation timeout of a
    # reconciliation (300000 ms) spent on the broker pod (shape of Strimzi PR #1689).
    (not_ready("Exceeded timeout of 300000ms while waiting for Pods resource"
               " my-cluster-dual-role-0 in namespace kafka to be ready", "TimeoutException"),
     "Kafka kafka/my-cluster is not Ready: Exceeded timeout of 300000ms while waiting for"
     " Pods resource my-cluster-dual-role-0 in namespace kafka to be ready (kubectl -n kafka"
     " describe pod my-cluster-dual-role-0)"),
    # Strimzi 0.47 KafkaAssemblyOperator.initialStatus: a Kafka just created.
    (not_ready("Kafka cluster is being deployed", "Creating"),
     "Kafka kafka/my-cluster is not Ready: Kafka cluster is being deployed"),
    # Strimzi 0.47 KafkaRoller (FatalProblem), as Strimzi PR #8892's test log shows it.
    (not_ready("Pod is unschedulable or is not starting", "FatalProblem"),
     "Kafka kafka/my-cluster is not Ready: Pod is unschedulable or is not starting"),
    # Strimzi 0.47 NodePoolUtils.validateNodePools (InvalidResourceException), over lines.
    (not_ready("KafkaNodePools are enabled, but KafkaNodePools for Kafka cluster my-cluster"
               " either don't exist or have 0 replicas.\nPlease make sure at least one"
               " KafkaNodePool resource exists", "InvalidResourceException"),
     "Kafka kafka/my-cluster is not Ready: KafkaNodePools are enabled, but KafkaNodePools"
     " for Kafka cluster my-cluster either don't exist or have 0 replicas. Please make sure"
     " at least one KafkaNodePool resource exists"),
    # The operator has not written any status yet (not running, or not watching kafka).
    (None, "Kafka kafka/my-cluster is not there after the apply"),
    ({}, "Kafka kafka/my-cluster is not Ready: it has no Ready condition yet: is the Strimzi"
         " operator running? (kubectl -n kafka logs deployment/strimzi-cluster-operator)"),
])
def test_a_kafka_not_ready_is_one_line_with_strimzis_message(
        tmp_path: Path, status: dict[str, Any] | None, line: str) -> None:
    step = {s.id: s for s in steps()}["kafka-cluster"]
    statuses = {"KafkaNodePool/dual-role": POOL}  # no Ready condition: not asked for one
    if status is not None:
        statuses["Kafka/my-cluster"] = status
    assert verify_with_live(step, tmp_path, statuses) == [line]
    statuses["Kafka/my-cluster"] = READY
    assert verify_with_live(step, tmp_path / "ready", statuses) == []


def test_topics_and_the_user_not_ready_say_strimzis_messages(tmp_path: Path) -> None:
    plan = {s.id: s for s in steps()}
    # Strimzi 0.47 BatchingTopicController.updateStatusForException: Ready False, reason
    # KafkaError, the message as CoreFeaturesIT.shouldFailCreationIfMoreReplicasThanBrokers
    # records it.
    failed = {"conditions": [{
        "type": "Ready", "status": "False", "reason": "KafkaError",
        "message": "org.apache.kafka.common.errors.InvalidReplicationFactorException: Unable"
                   " to replicate the partition 32767 time(s): The target replication factor"
                   " of 32767 cannot be reached because only 1 broker(s) are registered."}]}
    statuses = {f"KafkaTopic/{t}": READY for t in TOPICS}
    statuses["KafkaTopic/travel-proposal.completed"] = failed
    assert verify_with_live(plan["kafka-topics"], tmp_path / "t", statuses) == [
        "KafkaTopic kafka/travel-proposal.completed is not Ready:"
        " org.apache.kafka.common.errors.InvalidReplicationFactorException: Unable to"
        " replicate the partition 32767 time(s): The target replication factor of 32767"
        " cannot be reached because only 1 broker(s) are registered."]
    # Strimzi 0.47 KafkaUserModel: the password Secret the KafkaUser names is missing.
    user = not_ready("Secret app-client-password with requested user password does not"
                     " exist.", "InvalidResourceException")
    assert verify_with_live(plan["kafka-user"], tmp_path / "u",
                            {"KafkaUser/app-client": user}) == [
        "KafkaUser kafka/app-client is not Ready: Secret app-client-password with requested"
        " user password does not exist."]


def test_applied_but_not_ready_waits_again_with_its_deadline() -> None:
    step = {s.id: s for s in steps()}["kafka-cluster"]
    raw = Raw(json.dumps({"key": "Kafka/kafka/my-cluster", "state": "same", "ready": "False",
                          "message": "Kafka cluster is being deployed"}) + "\n"
              + json.dumps({"key": "KafkaNodePool/kafka/dual-role", "state": "same"}) + "\n",
              0)
    ((change),) = step.plan(Facts({step.diff.key: raw}))
    assert (change.summary, [" ".join(c.argv) for c in change.commands]) == (
        "wait for Kafka/kafka/my-cluster",
        ["/opt/kubectl wait --for=condition=Ready --timeout=900s"
         " kafka.kafka.strimzi.io/my-cluster -n kafka"])


# What kubectl 1.33.9 prints when diff meets a kind the API does not serve, and a
# namespace that does not exist (as tests/standins/standin_kubectl.py quotes them).
NO_CRD = ('error: resource mapping not found for name: "my-cluster-kafka-exporter" namespace:'
          ' "kafka" from "STDIN": no matches for kind "PodMonitor" in version'
          ' "monitoring.coreos.com/v1"\nensure CRDs are installed first')
NO_NAMESPACE = 'Error from server (NotFound): namespaces "kafka" not found'


def test_the_podmonitor_waits_for_its_crd_with_one_note() -> None:
    step = {s.id: s for s in steps()}["kafka-podmonitor"]
    facts = Facts({step.diff.key: Raw("", 1, NO_CRD)})
    assert step.plan(facts) == []
    assert step.notes(facts) == [
        "PodMonitor left out: this cluster has no PodMonitor CRD (monitoring.coreos.com/v1,"
        " from kube-prometheus-stack): run inv monitoring.install, then inv kafka.deploy"
        " again"]
    facts = Facts({step.diff.key: Raw("", 1, NO_NAMESPACE)})  # the namespace comes earlier
    ((change),) = step.plan(facts)
    assert change.summary == ('apply 1 objects (not there yet: Error from server (NotFound):'
                              ' namespaces "kafka" not found)')
    assert [c.argv[1:3] for c in change.commands] == [("apply", "--server-side")]
    assert step.notes(facts) == []
    new = Raw(json.dumps({"key": "PodMonitor/kafka/my-cluster-kafka-exporter",
                          "state": "new"}) + "\n", 1)
    assert [c.summary for c in step.plan(Facts({step.diff.key: new}))] == [
        "create PodMonitor/kafka/my-cluster-kafka-exporter"]


def secret(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {"password": "not-a-real-secret"}}


def test_only_the_kafka_namespace_password_is_applied_here() -> None:
    docs = [secret("app-client-password", "kafka"), secret("kafka-app-client", "app")]
    found = kafka.password_secret(session(), docs)
    assert (found.source, found.namespace, found.name) == (
        "secrets/secret-kafka.sops.yaml", "kafka", "app-client-password")
    with pytest.raises(UserError) as info:
        kafka.password_secret(session(), docs[1:])
    assert str(info.value) == ("secrets/secret-kafka.sops.yaml: no Secret"
                               " kafka/app-client-password (it holds: app/kafka-app-client):"
                               " run inv secrets.init")


class NoStore:
    @classmethod
    def open(cls, loaded: object) -> NoStore:
        raise UserError("secrets/secret-kafka.sops.yaml: missing: run inv secrets.init")


def test_run_without_secrets_plans_the_rest_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.secrets.store

    monkeypatch.setattr(tasks.secrets.store, "SecretStore", NoStore)
    seen: list[list[str]] = []

    def fake_layer(s: Any, lay: Any) -> bool:
        seen.append([st.id for st in lay.steps(s, ToolsTarget(TOOLS))])
        return True

    monkeypatch.setattr(kafka, "run_cluster_layer", fake_layer)
    s = session()
    s.check, out = True, io.StringIO()
    s.reporter = Reporter(out)
    assert kafka.run(s)
    assert "kafka-password" not in seen[0] and "kafka-cluster" in seen[0]
    assert out.getvalue().split(None, 1)[1] == (
        "secrets/secret-kafka.sops.yaml: missing: run inv secrets.init (the password Secret"
        " is not planned)\n")
    s.check = False
    with pytest.raises(UserError, match=r"missing: run inv secrets\.init"):
        kafka.run(s)
