"""inv upgrade's plan as data: recorded facts (kubectl's and helm's JSON, as they print
it) and the repository's pins in, the moves with the notes to read out; downgrades and
skipped steps refused in one line each; nothing to do said in one line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks.cluster.kube import Tools
from tasks.engine.errors import UserError
from tasks.engine.facts import Raw
from tasks.model.fields import build
from tasks.model.model import Inventory
from tasks.upgrade import facts, show
from tasks.upgrade.plan import Plan, make_plan, pins
from tests.unit.platform_ctx import DEFAULT, _merge

TOOLS = Tools("kubectl", "helm")


def inventory(**versions: str) -> Inventory:
    inv, errors = build(Inventory, _merge(DEFAULT, {"versions": versions}))
    assert errors == [], errors
    return inv


def node(name: str, kubelet: str, ready: bool = True) -> dict[str, Any]:
    """A Node as ``kubectl get nodes -o json`` prints it (the fields we read, and some)."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False",
                 "reason": "KubeletHasSufficientMemory"},
                {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "KubeletReady" if ready else "KubeletNotReady",
                 "message": "kubelet is posting ready status" if ready
                 else "container runtime network not ready"}],
                "nodeInfo": {"kubeletVersion": kubelet, "kubeProxyVersion": kubelet,
                             "containerRuntimeVersion": "containerd://2.0.5-k3s1",
                             "osImage": "Debian GNU/Linux 12 (bookworm)"}}}


def release(name: str, namespace: str, chart: str, revision: int = 1,
            status: str = "deployed") -> dict[str, str]:
    """One element of ``helm list -A -o json`` (helm's releaseElement; revision a string)."""
    return {"name": name, "namespace": namespace, "revision": str(revision),
            "updated": "2026-01-05 09:00:01.100001001 +0000 UTC", "status": status,
            "chart": chart, "app_version": chart.rsplit("-", 1)[-1]}


def kafka_cr(spec: str, status: str) -> dict[str, Any]:
    return {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka",
            "metadata": {"name": "my-cluster", "namespace": "kafka"},
            "spec": {"kafka": {"version": spec, "replicas": 1}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "kafkaVersion": status, "kafkaMetadataVersion": "3.9-IV0",
                       "operatorLastSuccessfulVersion": "0.46.0"}}


AT_PINS = [release("apps", "app", "apps-0.1.0"),
           release("cert-manager", "cert-manager", "cert-manager-v1.13.1"),
           release("flux2", "flux-system", "flux2-2.16.4"),
           release("kube-prometheus-stack", "monitoring", "kube-prometheus-stack-85.4.0"),
           release("strimzi", "kafka", "strimzi-kafka-operator-0.47.0")]


def deployed(nodes: list[dict[str, Any]], releases: list[dict[str, str]],
             kafka: dict[str, Any] | None) -> facts.Deployed:
    """The facts parsed by their own parsers, from the tools' output."""
    listed = {"apiVersion": "v1", "kind": "List", "items": nodes, "metadata": {}}
    cr = facts.kafka_fact(TOOLS, "kafka", "my-cluster").parse(
        Raw(json.dumps(kafka), 0) if kafka else
        Raw("", 1, 'Error from server (NotFound): kafkas.kafka.strimzi.io "my-cluster" not found'))
    return facts.Deployed(facts.nodes_fact(TOOLS).parse(Raw(json.dumps(listed), 0)),
                          facts.releases_fact(TOOLS).parse(Raw(json.dumps(releases), 0)), cr)


def plan(inv: Inventory, found: facts.Deployed) -> Plan:
    return make_plan(inv, pins(inv), found)


def test_every_moving_version_with_its_notes() -> None:
    inv = inventory(k3s="v1.34.1+k3s1", cert_manager="v1.15.3")
    found = deployed(
        [node("vps1", "v1.33.3+k3s1")],
        [*AT_PINS[:1], release("cert-manager", "cert-manager", "cert-manager-v1.13.1", 3),
         AT_PINS[2], release("kube-prometheus-stack", "monitoring",
                             "kube-prometheus-stack-83.7.0", 2),
         release("strimzi", "kafka", "strimzi-kafka-operator-0.46.0")],
        kafka_cr("3.9.1", "3.9.1"))
    result = plan(inv, found)
    assert [(m.component, m.where, m.current, m.wanted, m.layer) for m in result.moves] == [
        ("k3s", "node vps1", "v1.33.3+k3s1", "v1.34.1+k3s1", "k3s.install"),
        ("cert-manager", "cert-manager", "v1.13.1", "v1.15.3", "ingress.certs"),
        ("kube-prometheus-stack", "monitoring", "83.7.0", "85.4.0", "monitoring.install"),
        ("strimzi", "kafka", "0.46.0", "0.47.0", "kafka.deploy"),
        ("kafka", "Kafka kafka/my-cluster", "3.9.1", "4.0.0", "kafka.deploy")]
    assert result.layers() == ["k3s.install", "ingress.certs", "monitoring.install",
                               "kafka.deploy"]
    assert {m.component: m.notes.urls for m in result.moves} == {
        "k3s": ("https://github.com/k3s-io/k3s/releases/tag/v1.34.1%2Bk3s1",
                "https://github.com/kubernetes/kubernetes/blob/master/CHANGELOG/"
                "CHANGELOG-1.34.md#urgent-upgrade-notes"),
        "cert-manager": ("https://cert-manager.io/docs/releases/upgrading/upgrading-1.13-1.14",
                         "https://cert-manager.io/docs/releases/upgrading/upgrading-1.14-1.15",
                         "https://cert-manager.io/docs/releases/release-notes/release-notes-1.15"),
        "kube-prometheus-stack": (
            "https://github.com/prometheus-community/helm-charts/releases/tag/"
            "kube-prometheus-stack-85.4.0",
            "https://github.com/prometheus-community/helm-charts/blob/main/charts/"
            "kube-prometheus-stack/UPGRADE.md#from-83x-to-84x",
            "https://github.com/prometheus-community/helm-charts/blob/main/charts/"
            "kube-prometheus-stack/UPGRADE.md#from-84x-to-85x"),
        "strimzi": ("https://github.com/strimzi/strimzi-kafka-operator/blob/0.47.0/CHANGELOG.md",
                    "https://strimzi.io/docs/operators/0.47.0/deploying#assembly-upgrade-str"),
        "kafka": ("https://strimzi.io/docs/operators/0.47.0/deploying"
                  "#assembly-upgrading-kafka-versions-str",
                  "https://kafka.apache.org/40/documentation.html#upgrade")}
    warned = {m.component: len(m.notes.warnings) for m in result.moves}
    assert warned == {"k3s": 0, "cert-manager": 0, "kube-prometheus-stack": 1, "strimzi": 1,
                      "kafka": 1}
    lines = show.lines(result)
    assert lines[:7] == [
        "5 version(s) move, layer by layer: k3s.install, ingress.certs, monitoring.install,"
        " kafka.deploy",
        "component              where                   from          to            layer",
        "k3s                    node vps1               v1.33.3+k3s1  v1.34.1+k3s1  k3s.install",
        "cert-manager           cert-manager            v1.13.1       v1.15.3       ingress.certs",
        "kube-prometheus-stack  monitoring              83.7.0        85.4.0"
        "        monitoring.install",
        "strimzi                kafka                   0.46.0        0.47.0        kafka.deploy",
        "kafka                  Kafka kafka/my-cluster  3.9.1         4.0.0         kafka.deploy"]
    assert max(len(line) for line in show.table(result)) <= 100
    assert lines[7:10] == ["read before upgrading:", "k3s v1.34.1+k3s1:",
                           "  https://github.com/k3s-io/k3s/releases/tag/v1.34.1%2Bk3s1"]
    assert "  note: Strimzi upgrades Kafka only with an operator that supports both" \
           " versions: kafka.deploy upgrades the operator first, then the Kafka CR (a rolling" \
           " restart of the brokers)" in lines


def test_a_kafka_cr_still_rolling_is_a_move_from_what_the_brokers_run() -> None:
    inv = inventory()
    result = plan(inv, deployed([node("vps1", "v1.33.3+k3s1")], AT_PINS,
                                kafka_cr("4.0.0", "3.9.1")))
    assert [(m.component, m.current, m.wanted) for m in result.moves] == [
        ("kafka", "3.9.1", "4.0.0")]
    assert result.layers() == ["kafka.deploy"]


def test_nothing_to_upgrade_is_one_line() -> None:
    inv = inventory()
    result = plan(inv, deployed([node("vps1", "v1.33.3+k3s1")], AT_PINS,
                                kafka_cr("4.0.0", "4.0.0")))
    assert result.moves == ()
    assert show.lines(result) == ["nothing to upgrade: every pinned version is the one running"]


def test_what_is_not_deployed_is_named_not_moved() -> None:
    inv = inventory()
    result = plan(inv, deployed([node("vps1", "v1.33.3+k3s1")], AT_PINS[1:3], None))
    assert result.moves == ()
    assert show.lines(result) == [
        "nothing to upgrade: every pinned version is the one running (4 not deployed:"
        " kube-prometheus-stack (no release monitoring/kube-prometheus-stack), strimzi (no"
        " release kafka/strimzi), kafka (no Kafka kafka/my-cluster), apps (no release"
        " app/apps))"]


@pytest.mark.parametrize(("versions", "nodes", "releases", "kafka", "lines"), [
    ({}, [node("vps1", "v1.33.3+k3s1")],
     [release("cert-manager", "cert-manager", "cert-manager-v1.14.0"), *AT_PINS[2:]],
     kafka_cr("4.0.0", "4.0.0"),
     ["cert-manager: release cert-manager/cert-manager runs v1.14.0, newer than"
      " versions.cert_manager v1.13.1: downgrades are refused (restore a backup instead)"]),
    ({}, [node("vps1", "v1.33.4+k3s1")], AT_PINS, kafka_cr("4.0.0", "4.0.0"),
     ["k3s: node vps1 runs v1.33.4+k3s1, newer than versions.k3s v1.33.3+k3s1: downgrades"
      " are refused (restore a backup instead)"]),
    ({"kafka": "3.9.1"}, [node("vps1", "v1.33.3+k3s1")], AT_PINS, kafka_cr("4.0.0", "4.0.0"),
     ["kafka: Kafka kafka/my-cluster runs 4.0.0, newer than versions.kafka 3.9.1: downgrades"
      " are refused (restore a backup instead)"]),
    ({"k3s": "v1.35.0+k3s1"}, [node("vps1", "v1.33.3+k3s1")], AT_PINS,
     kafka_cr("4.0.0", "4.0.0"),
     ["k3s: node vps1 runs v1.33.3+k3s1 and versions.k3s v1.35.0+k3s1 skips Kubernetes 1.34:"
      " Kubernetes upgrades one minor version at a time; pin a 1.34 release first"]),
    ({}, [node("vps1", "v1.33.3+k3s1")],
     [*AT_PINS[:4], release("strimzi", "kafka", "strimzi-kafka-operator-0.45.0")],
     kafka_cr("3.8.0", "3.8.0"),
     ["strimzi: 0.47.0 does not support Kafka 3.8.0, which kafka/my-cluster runs (it supports"
      " 3.9.0, 3.9.1, 4.0.0): first move versions.kafka to one both 0.45.0 and 0.47.0"
      " support, keeping versions.strimzi 0.45.0, then upgrade Strimzi"]),
])
def test_refused_in_one_line(versions: dict[str, str], nodes: list[dict[str, Any]],
                             releases: list[dict[str, str]], kafka: dict[str, Any],
                             lines: list[str]) -> None:
    inv = inventory(**versions)
    with pytest.raises(UserError) as caught:
        plan(inv, deployed(nodes, releases, kafka))
    assert caught.value.lines == lines


def test_a_read_that_fails_is_one_line_not_nothing_to_do() -> None:
    fact = facts.nodes_fact(TOOLS)
    with pytest.raises(Exception, match="the API refused our credentials"):
        fact.parse(Raw("", 1, "error: You must be logged in to the server (Unauthorized)"))
    assert facts.kafka_fact(TOOLS, "kafka", "my-cluster").parse(
        Raw("", 1, 'error: the server doesn\'t have a resource type "kafkas"')) is None


def test_inv_upgrade_is_a_task_with_the_usual_options() -> None:
    from tasks.collection import ns

    task = ns.tasks["upgrade"]
    assert sorted(task.help) == ["check", "host", "inventory", "trust-new-host-key", "verbose"]
