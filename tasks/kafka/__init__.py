"""``kafka.deploy``: the Strimzi operator, then Kafka ``my-cluster`` and what the apps use.

In order: the kafka namespace (PodSecurity labels), the NetworkPolicy that guards the
brokers (in place before anything runs there, and so before the apps start: apps.deploy
comes after this layer), the Strimzi chart from the pulled archive (``--wait``; it brings
the CRDs of every object after it), the ``app-client`` password Secret (decrypted in
memory, on stdin only), the Kafka with its one dual-role node pool, the KafkaTopics and
the KafkaUser, each waited Ready by its own condition; last the Kafka Exporter's
PodMonitor, whose CRD comes with monitoring.install.

What Strimzi 0.47 writes, and what we read from it:

- Kafka and KafkaUser: ``Ready: "True"`` once reconciled; a failure is ``NotReady:
  "True"`` with the exception's class as reason and its text as message (a new Kafka
  starts as ``NotReady``/``Creating``, "Kafka cluster is being deployed"). kdiff reads
  NotReady as not Ready, with its message.
- KafkaTopic: ``Ready: "True"``, or ``Ready: "False"`` with reason and message.
- KafkaNodePool: no Ready condition at all (node IDs, roles, replicas); the Kafka's Ready
  covers its pool, so the pool is applied with the Kafka and not waited on by itself.

Waits never fail a step on their own: once they end (Ready, or their deadline), the
objects are read again and the verification names what is not Ready with Strimzi's own
message in one line (``Kafka kafka/my-cluster is not Ready: Exceeded timeout ...``).
The Kafka gets 15 minutes: Strimzi gives one reconciliation 5 minutes to get a pod ready
(``operationTimeoutMs``) and retries every 2 (``fullReconciliationIntervalMs``), and a
small VPS pulling the Kafka image and starting the JVM can need a retry.

The PodMonitor needs the PodMonitor CRD of kube-prometheus-stack. deploy.all runs
monitoring.install first; on a cluster without it (kafka.deploy alone) it is left out
with one note rather than failing the layer: Kafka and the apps do not depend on it, and
the next kafka.deploy after monitoring.install applies it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tasks.cli import Session
from tasks.cluster.kube import DiffResult, ObjectState, Tools
from tasks.cluster.steps import HelmReleaseStep, ObjectsStep, read
from tasks.engine.command import Command
from tasks.engine.errors import UserError
from tasks.engine.facts import Facts
from tasks.engine.step import Change, Step
from tasks.engine.target import Target
from tasks.layer import ClusterLayer, run_cluster_layer
from tasks.stack.components import kafka
from tasks.stack.context import context
from tasks.stack.render import Document, Release, dig

SECRET_NAME = "secret-kafka"  # noqa: S105 (a file name, secrets/secret-kafka.sops.yaml)
GROUP = "kafka.strimzi.io"
#: Deadlines of the waits, in seconds (see the module docstring for the Kafka's).
KAFKA_SECONDS = 900
TOPICS_SECONDS = 180
USER_SECONDS = 180
#: kubectl wait exits 1 when its deadline passes: the verification says why, in
#: Strimzi's words, from a fresh read.
WAIT_ENDED = (0, 1)
PODMONITOR_MISSING = (
    "PodMonitor left out: this cluster has no PodMonitor CRD (monitoring.coreos.com/v1,"
    " from kube-prometheus-stack): run inv monitoring.install, then inv kafka.deploy again")


def one_line(text: str) -> str:
    return " ".join(text.split())


def _minutes(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


_POD = re.compile(r"Pods resource (\S+) in namespace (\S+)")


def not_ready_line(key: str, state: ObjectState | None) -> str:
    """One line for a Strimzi object that is not Ready: ``Kafka kafka/my-cluster is not
    Ready: <Strimzi's message>`` (``key`` as kdiff names objects: Kind/namespace/name),
    with where to look next when the message names a pod."""
    kind, namespace, name = key.split("/", 2)
    who = f"{kind} {namespace}/{name}"
    if state is None or state.state == "new":
        return f"{who} is not there after the apply"
    if state.ready is None:
        return (f"{who} is not Ready: it has no Ready condition yet: is the Strimzi"
                f" operator running? (kubectl -n {namespace} logs"
                " deployment/strimzi-cluster-operator)")
    message = one_line(state.message) or "no message"
    pod = _POD.search(message)
    if pod:
        message += f" (kubectl -n {pod[2]} describe pod {pod[1]})"
    return f"{who} is not Ready: {message}"


def ready_wait(tools: Tools, kind: str, names: Sequence[str], namespace: str,
               seconds: int) -> Command:
    """One ``kubectl wait --for=condition=Ready`` for ``names`` (one deadline for all),
    which ends the step's changes without failing them (see :data:`WAIT_ENDED`)."""
    return Command((tools.kubectl, "wait", "--for=condition=Ready", f"--timeout={seconds}s",
                    *(f"{kind}.{GROUP}/{n}" for n in names), "-n", namespace),
                   timeout=seconds + 30, ok_codes=WAIT_ENDED)


class StrimziObjects(ObjectsStep):
    """Strimzi custom resources, waited Ready; what is not Ready says Strimzi's message."""

    def verify(self, facts: Facts) -> list[str]:
        result: DiffResult = read(facts, self.diff)
        out = [f"{o.key} still differs from ours after the apply" for o in result.changed
               if not o.flux_owner and not (o.state == "new" and o.key in self.must_be_ready)]
        by_key = {o.key: o for o in result.objects}
        return out + [not_ready_line(key, by_key.get(key)) for key in self.must_be_ready
                      if key not in by_key or by_key[key].ready != "True"]


def podmonitor_crd_missing(result: DiffResult) -> bool:
    """kubectl diff refused the PodMonitor because the API does not serve its kind (not
    because the namespace is missing: that one the earlier steps create)."""
    low = (result.missing_api or "").lower()
    return "no matches for kind" in low or "ensure crds are installed first" in low


class PodMonitorStep(ObjectsStep):
    """The Kafka Exporter's PodMonitor, once the monitoring CRDs exist; until then left
    out with one note (see the module docstring)."""

    def plan(self, facts: Facts) -> list[Change]:
        if podmonitor_crd_missing(read(facts, self.diff)):
            return []
        return super().plan(facts)

    def notes(self, facts: Facts) -> list[str]:
        return [PODMONITOR_MISSING] if podmonitor_crd_missing(read(facts, self.diff)) else []


def _key(doc: Document) -> str:
    return f"{doc.kind}/{doc.namespace or '-'}/{doc.name}"


def default_archive(release: Release) -> Path:
    from tasks.stack.charts import chart_archive

    return chart_archive(release)


def steps(session: Session, target: Target, secrets: Sequence[Document] | None,
          archive: Callable[[Release], Path] = default_archive) -> list[Step]:
    """The layer; ``secrets`` is the decrypted password Secret of the kafka namespace
    (None in plan mode when it cannot be read: that step is then left out)."""
    inv = session.inventory.data
    ctx = context(inv)
    tools: Tools = target.tools  # type: ignore[attr-defined]
    bundle = kafka.render(ctx)
    docs = bundle.documents
    ns = inv.kafka.namespace

    def of(*kinds: str) -> list[Document]:
        return [d for d in docs if d.kind in kinds]

    cluster = of("Kafka", "KafkaNodePool")
    topics, users = of("KafkaTopic"), of("KafkaUser")
    (release,) = bundle.releases
    (kafka_doc,) = of("Kafka")
    out: list[Step] = [
        ObjectsStep("kafka-namespace", "kafka: namespace", tools, of("Namespace")),
        ObjectsStep("kafka-network-policy", f"kafka: NetworkPolicy guarding the brokers (from"
                    f" {inv.apps.namespace} only)", tools,
                    of("NetworkPolicy")),
        HelmReleaseStep("strimzi", f"kafka: Strimzi operator chart {release.version}", tools,
                        release, archive=archive),
    ]
    if secrets is not None:
        out.append(ObjectsStep("kafka-password", f"kafka: {inv.kafka.user} password Secret",
                               tools, secrets, secret=True))
    out += [
        StrimziObjects("kafka-cluster", f"kafka: Kafka {kafka_doc.name} Ready (KRaft, dual-role;"
                       f" up to {_minutes(KAFKA_SECONDS)})", tools,
                       cluster, waits=[ready_wait(tools, "kafka", [kafka_doc.name], ns,
                                                  KAFKA_SECONDS)],
                       must_be_ready=[_key(kafka_doc)]),
        StrimziObjects("kafka-topics", f"kafka: {len(topics)} KafkaTopics Ready (up to"
                       f" {_minutes(TOPICS_SECONDS)})", tools, topics,
                       waits=[ready_wait(tools, "kafkatopic", [d.name for d in topics], ns,
                                         TOPICS_SECONDS)],
                       must_be_ready=[_key(d) for d in topics]),
        StrimziObjects("kafka-user", f"kafka: KafkaUser {inv.kafka.user} Ready (up to"
                       f" {_minutes(USER_SECONDS)})", tools, users,
                       waits=[ready_wait(tools, "kafkauser", [d.name for d in users], ns,
                                         USER_SECONDS)],
                       must_be_ready=[_key(d) for d in users]),
        PodMonitorStep("kafka-podmonitor", "kafka: PodMonitor of the Kafka Exporter (after"
                       " monitoring.install)", tools, of("PodMonitor")),
    ]
    return out


def password_secret(session: Session, documents: Sequence[dict[str, Any]]) -> Document:
    """Of secret-kafka's Secrets, the one the KafkaUser reads (its secretKeyRef, in the
    kafka namespace); the apps' copy is apps.deploy's."""
    inv = session.inventory.data
    (user,) = [d for d in kafka.documents(context(inv)) if d.kind == "KafkaUser"]
    name = dig(user.obj, "spec", "authentication", "password", "valueFrom", "secretKeyRef",
               "name")
    found = [d for d in documents if d.get("kind") == "Secret"
             and (d.get("metadata") or {}).get("name") == name
             and (d.get("metadata") or {}).get("namespace") == inv.kafka.namespace]
    if len(found) != 1:
        held = ", ".join(f"{(d.get('metadata') or {}).get('namespace')}/"
                         f"{(d.get('metadata') or {}).get('name')}" for d in documents)
        raise UserError(f"secrets/{SECRET_NAME}.sops.yaml: no Secret"
                        f" {inv.kafka.namespace}/{name} (it holds: {held or 'nothing'}):"
                        " run inv secrets.init")
    return Document(f"secrets/{SECRET_NAME}.sops.yaml", found[0])


def run(session: Session) -> bool:
    """The password Secret decrypted (in memory), then the layer. In plan mode a Secret
    that cannot be read yet (no secrets.init) is said in one line and left out."""
    from tasks.secrets.store import SecretStore

    try:
        documents = SecretStore.open(session.inventory).documents(SECRET_NAME)
        secrets: list[Document] | None = [password_secret(session, documents)]
    except UserError as exc:
        if not session.check:
            raise
        session.reporter.note("kafka", f"{exc.lines[0]} (the password Secret is not planned)")
        secrets = None
    layer = ClusterLayer("kafka.deploy", lambda s, t: steps(s, t, secrets))
    return run_cluster_layer(session, layer)


__all__ = ["PODMONITOR_MISSING", "not_ready_line", "run", "steps"]
