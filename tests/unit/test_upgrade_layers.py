"""inv upgrade inside a layer, through the STAND-IN kubectl and helm: a Kafka version move
with its Strimzi move goes operator first, then the Kafka CR (kafka.deploy's own order);
the health gate names what is not healthy after a layer, one line each."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from tasks import kafka
from tasks.cli import Session
from tasks.cluster.access import ClusterTarget
from tasks.cluster.kube import Tools
from tasks.engine.converge import converge
from tasks.engine.report import Reporter, Summary
from tasks.model.fields import build
from tasks.model.load import Loaded
from tasks.model.model import Inventory
from tasks.stack.render import Document, Release
from tasks.upgrade.apply import gate, read_deployed
from tasks.upgrade.notes import Notes
from tasks.upgrade.plan import Move, make_plan, pins
from tasks.upgrade.versions import newer, semver
from tests.standins.harness import Standins, chart_archive
from tests.unit.cluster_catalog import ToolsTarget
from tests.unit.platform_ctx import DEFAULT, _merge
from tests.unit.test_kafka_standins import PASSWORD
from tests.unit.test_upgrade_plan import node


def session(**versions: str) -> Session:
    inv, errors = build(Inventory, _merge(DEFAULT, {"versions": versions}))
    assert errors == [], errors
    return Session(Loaded(inv, Path("/nonexistent/inventory.yaml")))


def target(standins: Standins) -> ClusterTarget:
    tools = standins.tools()
    return ClusterTarget(name="cluster standin", tools=tools, kubeconfig=standins.kubeconfig,
                         env=standins.env(tools))


def converge_kafka(standins: Standins, s: Session, charts: Path) -> None:
    def archive(release: Release) -> Path:
        return chart_archive(charts, release.chart, release.version)

    out = io.StringIO()
    t = target(standins)
    docs = [Document("secrets/secret-kafka.sops.yaml", PASSWORD)]
    assert converge(t, kafka.steps(s, t, docs, archive=archive), check=False,
                    reporter=Reporter(out), summary=Summary()), out.getvalue()


def test_kafka_steps_put_the_operator_before_the_kafka_cr() -> None:
    t: Any = ToolsTarget(Tools("kubectl", "helm"))
    ids = [step.id for step in kafka.steps(session(), t, None)]
    assert ids.index("strimzi") < ids.index("kafka-cluster")


def test_a_kafka_move_goes_operator_first_then_the_kafka_cr(standins: Standins,
                                                            tmp_path: Path) -> None:
    standins.install_crds("kube-prometheus-stack")
    standins.record(node("vps1", "v1.33.3+k3s1"))
    converge_kafka(standins, session(strimzi="0.46.0", kafka="3.9.1"), tmp_path / "charts")
    new = session()
    everything = pins(new.inventory.data)
    plan = make_plan(new.inventory.data, everything, read_deployed(target(standins), everything))
    assert [(m.component, m.current, m.wanted, m.layer) for m in plan.moves] == [
        ("strimzi", "0.46.0", "0.47.0", "kafka.deploy"),
        ("kafka", "3.9.1", "4.0.0", "kafka.deploy")]
    assert gate(target(standins), plan.moves) == [
        "release kafka/strimzi is deployed at strimzi-kafka-operator-0.46.0, not deployed at"
        " strimzi-kafka-operator-0.47.0",
        "Kafka kafka/my-cluster runs Kafka 3.9.1, not 4.0.0"]

    standins.clear_calls()
    converge_kafka(standins, new, tmp_path / "charts")
    changes = [c for c in standins.calls() if c.args[0] in ("upgrade", "apply")]
    order = ["helm upgrade strimzi" if c.args[0] == "upgrade" else
             "kubectl apply Kafka" if b"kind: Kafka\n" in c.stdin else "kubectl apply"
             for c in changes]
    assert order.index("helm upgrade strimzi") < order.index("kubectl apply Kafka"), order
    kafka_cr = standins.object("Kafka/kafka/my-cluster")
    assert kafka_cr is not None and kafka_cr["spec"]["kafka"]["version"] == "4.0.0"
    assert gate(target(standins), plan.moves) == []


def test_the_gate_names_what_is_not_healthy(standins: Standins) -> None:
    standins.record(node("vps1", "v1.33.3+k3s1", ready=False))
    standins.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "coredns", "namespace": "kube-system"},
                    "spec": {"replicas": 1}}, "k3s")
    standins.inject(not_ready={"Deployment/kube-system/coredns": "Deployment does not have"
                                                                 " minimum availability."})
    moves = [Move("k3s", "node vps1", "v1.33.3+k3s1", "v1.33.4+k3s1", "k3s.install",
                  Notes())]
    assert gate(target(standins), moves) == [
        "node vps1 is not Ready: container runtime network not ready",
        "node vps1 runs v1.33.3+k3s1, not v1.33.4+k3s1",
        "Deployment kube-system/coredns is not Available: Deployment does not have minimum"
        " availability."]


def test_versions_order_as_their_projects_do() -> None:
    assert newer("v1.33.4+k3s1", "v1.33.3+k3s2", k3s=True) is True
    assert newer("v1.33.3+k3s2", "v1.33.3+k3s1", k3s=True) is True
    assert newer("v1.33.3+k3s1", "v1.33.3+k3s1", k3s=True) is False
    assert newer("85.4.0", "9.0.0") is True  # numbers, not text
    assert newer("1.0.0", "1.0.0-rc.1") is True
    assert newer("1.0.0-rc.2", "1.0.0-rc.10") is False
    assert newer("latest", "1.0.0") is None
    assert semver("v1.13.1") == ((1, 13, 1), 1, ())
