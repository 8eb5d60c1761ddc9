"""The kafka component: Strimzi release, cluster objects and their semantic checks."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.model.model import SPEC_TOPICS
from tasks.repo import REPO_ROOT
from tasks.stack.components import kafka
from tasks.stack.render import Bundle, Document
from tests.unit.platform_ctx import ctx_of, inventory

CRD_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas" / "crds"


@pytest.fixture(scope="module")
def ctx() -> dict[str, Any]:
    return ctx_of(inventory())


@pytest.fixture(scope="module")
def bundle(ctx: dict[str, Any]) -> Bundle:
    return kafka.render(ctx)


def one(bundle: Bundle, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d.obj for d in bundle.documents if d.kind == kind and name in (None, d.name)]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def of_kind(bundle: Bundle, kind: str) -> list[Document]:
    return [d for d in bundle.documents if d.kind == kind]


# Rendering: every spec number ------------------------------------------------------------

def test_namespace_is_first_and_restricted(bundle: Bundle) -> None:
    first = bundle.documents[0]
    assert (first.kind, first.name) == ("Namespace", "kafka")
    labels = first.obj["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_operator_release_pinned_and_restricted(bundle: Bundle) -> None:
    (release,) = bundle.releases
    assert (release.chart, release.version, release.namespace) == (
        "strimzi-kafka-operator", "0.47.0", "kafka")
    assert release.repo_url == "https://strimzi.io/charts/"
    assert release.values_source == "helm-values/strimzi.yaml"
    values = release.values
    # watches its own namespace (kafka) only
    assert values["watchNamespaces"] == [] and values["watchAnyNamespace"] is False
    assert {"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"} in (
        values["extraEnvs"])
    assert values["podSecurityContext"] == {"runAsNonRoot": True,
                                            "seccompProfile": {"type": "RuntimeDefault"}}
    assert values["securityContext"]["allowPrivilegeEscalation"] is False
    assert values["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert values["resources"]["limits"] == {"memory": "384Mi", "cpu": "1"}


def test_kafka_cluster_kraft_scram_simple(bundle: Bundle) -> None:
    cluster = one(bundle, "Kafka", "my-cluster")
    assert cluster["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert cluster["metadata"]["namespace"] == "kafka"
    assert cluster["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled",
                                                  "strimzi.io/kraft": "enabled"}
    spec = cluster["spec"]["kafka"]
    assert spec["version"] == "4.0.0"
    assert "zookeeper" not in cluster["spec"]
    (listener,) = spec["listeners"]
    assert listener["port"] == 9092
    assert (listener["type"], listener["tls"]) == ("internal", False)
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert listener["networkPolicyPeers"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "app"}}}]
    assert spec["authorization"] == {"type": "simple"}
    assert spec["config"] == {
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "auto.create.topics.enable": False,
    }


def test_entity_operator_and_exporter_have_limits(bundle: Bundle) -> None:
    spec = one(bundle, "Kafka")["spec"]
    for operator in ("topicOperator", "userOperator"):
        resources = spec["entityOperator"][operator]["resources"]
        assert resources["limits"] == {"memory": "384Mi", "cpu": "500m"}
        assert resources["requests"] == {"memory": "256Mi", "cpu": "50m"}
    exporter = spec["kafkaExporter"]
    assert exporter["resources"]["limits"] == {"memory": "128Mi", "cpu": "250m"}


def test_exporter_regexes_cover_our_topics_and_groups_only(bundle: Bundle) -> None:
    exporter = one(bundle, "Kafka")["spec"]["kafkaExporter"]
    topics, groups = re.compile(exporter["topicRegex"]), re.compile(exporter["groupRegex"])
    assert all(topics.search(t) for t in SPEC_TOPICS)
    assert not topics.search("__consumer_offsets")
    assert not topics.search("travel-generationXprogress")  # dots are literal
    for group in ("api-gateway", "api-gateway-client", "api-generation-server",
                  "api-enrichment"):
        assert groups.search(group)
    assert not groups.search("someone-else")


def test_node_pool_dual_role_local_path(bundle: Bundle) -> None:
    pool = one(bundle, "KafkaNodePool")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "my-cluster"
    spec = pool["spec"]
    assert spec["replicas"] == 1
    assert spec["roles"] == ["controller", "broker"]
    assert spec["storage"] == {"type": "persistent-claim", "size": "10Gi",
                               "class": "local-path", "deleteClaim": False}
    assert spec["resources"] == {"requests": {"memory": "1Gi", "cpu": "250m"},
                                 "limits": {"memory": "1Gi", "cpu": "1"}}


def test_six_spec_topics(bundle: Bundle) -> None:
    topics = of_kind(bundle, "KafkaTopic")
    assert [t.obj["spec"]["topicName"] for t in topics] == SPEC_TOPICS
    assert [t.name for t in topics] == SPEC_TOPICS
    for topic in topics:
        assert topic.source == "manifests/kafka/topics.yaml"
        assert topic.obj["metadata"]["labels"]["strimzi.io/cluster"] == "my-cluster"
        assert topic.obj["spec"]["partitions"] == 3
        assert topic.obj["spec"]["replicas"] == 1


def test_user_scram_with_acls_for_exactly_the_topics(bundle: Bundle) -> None:
    user = one(bundle, "KafkaUser", "app-client")
    auth = user["spec"]["authentication"]
    assert auth["type"] == "scram-sha-512"
    assert auth["password"]["valueFrom"]["secretKeyRef"] == {"name": "app-client-password",
                                                             "key": "password"}
    assert user["spec"]["authorization"]["type"] == "simple"
    acls = user["spec"]["authorization"]["acls"]
    topic_acls = [a for a in acls if a["resource"]["type"] == "topic"]
    assert [a["resource"]["name"] for a in topic_acls] == SPEC_TOPICS
    for acl in topic_acls:
        assert acl["resource"]["patternType"] == "literal"
        assert acl["operations"] == ["Read", "Write", "Describe"]
    group_acls = [a for a in acls if a["resource"]["type"] == "group"]
    assert {a["resource"]["name"] for a in group_acls} == {
        "api-gateway", "api-generation", "api-enrichment"}
    assert all(a["operations"] == ["Read"] for a in group_acls)
    assert len(acls) == len(topic_acls) + len(group_acls)


def test_network_policy_admits_app_namespace_and_strimzi_only(bundle: Bundle) -> None:
    policy = one(bundle, "NetworkPolicy")
    assert policy["metadata"]["namespace"] == "kafka"
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "strimzi.io/cluster": "my-cluster", "strimzi.io/kind": "Kafka",
        "strimzi.io/name": "my-cluster-kafka"}
    rules = {r["ports"][0]["port"]: r["from"] for r in policy["spec"]["ingress"]}
    assert set(rules) == {9092, 9090, 9091, 8443}
    assert rules[9092] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "app"}}}]
    peers = {port: [json.dumps(p, sort_keys=True) for p in peers]
             for port, peers in rules.items()}
    assert all("namespaceSelector" not in p for port in (9090, 9091, 8443)
               for p in peers[port])  # Strimzi's own pods, in this namespace
    assert any("cluster-operator" in p for p in peers[8443])
    assert any("my-cluster-kafka-exporter" in p for p in peers[9091])
    assert any("my-cluster-entity-operator" in p for p in peers[9091])


def test_exporter_is_scraped(bundle: Bundle) -> None:
    monitor = one(bundle, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"]["strimzi.io/name"] == (
        "my-cluster-kafka-exporter")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "tcp-prometheus"


def test_variant_inventory_flows_everywhere() -> None:
    ctx = ctx_of(inventory(kafka={"cluster": "events", "storage": "25Gi", "partitions": 6,
                                  "topics": ["orders.created", "audit_log"],
                                  "user": "svc"},
                           apps={"namespace": "web", **inventory()["apps"]}))
    bundle = kafka.render(ctx)
    assert one(bundle, "Kafka", "events")
    assert one(bundle, "KafkaNodePool")["spec"]["storage"]["size"] == "25Gi"
    topics = {t.name: t.obj["spec"] for t in of_kind(bundle, "KafkaTopic")}
    # a Kubernetes name cannot hold '_': the object is renamed, the topic is not
    assert topics == {"orders.created": {"topicName": "orders.created", "partitions": 6,
                                         "replicas": 1},
                      "audit-log": {"topicName": "audit_log", "partitions": 6, "replicas": 1}}
    user = one(bundle, "KafkaUser", "svc")
    assert user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"][
        "name"] == "svc-password"
    policy = one(bundle, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "web"}
    assert ctx["derived"]["kafka_bootstrap"] == "events-kafka-bootstrap.kafka.svc:9092"
    assert kafka.checks(bundle, ctx) == []


@pytest.mark.skipif(not CRD_SCHEMAS.is_dir(), reason="../shared/schemas/crds not present")
def test_objects_match_schemas(bundle: Bundle) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validate = pytest.importorskip("kubernetes_validate")
    for doc in bundle.documents:
        group, _, version = doc.api_version.rpartition("/")
        if group.endswith("strimzi.io") or group.endswith("coreos.com"):
            path = CRD_SCHEMAS / group / f"{doc.kind.lower()}_{version}.json"
            schema = json.loads(Path(path).read_text())
            errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc.obj)]
            assert errors == [], doc.label
        else:
            validate.validate(doc.obj, "1.33", strict=True)


# Semantic checks: each rule catches a broken object -----------------------------------

def test_default_bundle_passes_checks(bundle: Bundle, ctx: dict[str, Any]) -> None:
    assert kafka.checks(bundle, ctx) == []


def broken(bundle: Bundle, kind: str, name: str | None,
           change: Callable[[dict[str, Any]], None]) -> Bundle:
    docs = []
    for doc in bundle.documents:
        obj = copy.deepcopy(doc.obj)
        if doc.kind == kind and name in (None, doc.name):
            change(obj)
        docs.append(Document(doc.source, obj))
    return Bundle(documents=docs, releases=bundle.releases)


def errors_of(bundle: Bundle, ctx: dict[str, Any], kind: str, name: str | None,
              change: Callable[[dict[str, Any]], None]) -> list[str]:
    return kafka.checks(broken(bundle, kind, name, change), ctx)


def test_topic_replicas_above_broker_count(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def two(o: dict[str, Any]) -> None:
        o["spec"]["replicas"] = 2
    assert errors_of(bundle, ctx, "KafkaTopic", "travel-generation.progress", two) == [
        "manifests/kafka/topics.yaml: KafkaTopic travel-generation.progress: spec.replicas:"
        " must be <= broker count 1"]


def test_broker_count_counts_only_broker_pools(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def controller_only(o: dict[str, Any]) -> None:
        o["spec"]["roles"] = ["controller"]
    errors = errors_of(bundle, ctx, "KafkaNodePool", None, controller_only)
    assert "manifests/kafka/kafka.yaml: Kafka my-cluster: KafkaNodePool: no node pool with" \
           " the broker role" in errors
    assert any("spec.replicas: must be <= broker count 0" in e for e in errors)


def test_node_pool_without_controller(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def broker_only(o: dict[str, Any]) -> None:
        o["spec"]["roles"] = ["broker"]
    assert errors_of(bundle, ctx, "KafkaNodePool", None, broker_only) == [
        "manifests/kafka/kafka.yaml: Kafka my-cluster: KafkaNodePool: no node pool with"
        " the controller role"]


def test_min_isr_above_replication_factor(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def isr(o: dict[str, Any]) -> None:
        o["spec"]["kafka"]["config"]["min.insync.replicas"] = 2
    assert errors_of(bundle, ctx, "Kafka", None, isr) == [
        "manifests/kafka/kafka.yaml: Kafka my-cluster: spec.kafka.config.min.insync.replicas:"
        " must be <= default.replication.factor 1 (is 2)"]


def test_missing_replication_factor_uses_kafka_default(bundle: Bundle,
                                                       ctx: dict[str, Any]) -> None:
    def drop(o: dict[str, Any]) -> None:
        del o["spec"]["kafka"]["config"]["offsets.topic.replication.factor"]
    assert errors_of(bundle, ctx, "Kafka", None, drop) == [
        "manifests/kafka/kafka.yaml: Kafka my-cluster: spec.kafka.config."
        "offsets.topic.replication.factor: must be <= broker count 1 (is 3)"]


def test_topic_min_isr_above_its_replicas(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def isr(o: dict[str, Any]) -> None:
        o["spec"]["config"] = {"min.insync.replicas": 2}
    assert errors_of(bundle, ctx, "KafkaTopic", "travel-proposal.completed", isr) == [
        "manifests/kafka/topics.yaml: KafkaTopic travel-proposal.completed:"
        " spec.config.min.insync.replicas: must be <= spec.replicas 1"]


def test_topic_of_another_cluster(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def relabel(o: dict[str, Any]) -> None:
        o["metadata"]["labels"]["strimzi.io/cluster"] = "other"
    errors = errors_of(bundle, ctx, "KafkaTopic", "travel-proposal.progress", relabel)
    assert errors[0] == (
        "manifests/kafka/topics.yaml: KafkaTopic travel-proposal.progress:"
        " metadata.labels.strimzi.io/cluster: must name the Kafka cluster (my-cluster),"
        ' got "other"')
    # and the user's ACL now names a topic the cluster does not have
    assert any('acls[4].resource.name: no KafkaTopic "travel-proposal.progress"' in e
               for e in errors)


def test_user_acl_for_unknown_topic(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def typo(o: dict[str, Any]) -> None:
        o["spec"]["authorization"]["acls"][0]["resource"]["name"] = "travel-generation.progres"
    assert errors_of(bundle, ctx, "KafkaUser", None, typo) == [
        "manifests/kafka/user.yaml: KafkaUser app-client: spec.authorization.acls[0]"
        '.resource.name: no KafkaTopic "travel-generation.progres"',
        "manifests/kafka/user.yaml: KafkaUser app-client: spec.authorization.acls: no ACL"
        " for topic travel-generation.progress"]


def test_user_acl_by_prefix_is_refused(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wildcard(o: dict[str, Any]) -> None:
        o["spec"]["authorization"]["acls"].append(
            {"resource": {"type": "topic", "name": "travel-", "patternType": "prefix"},
             "operations": ["All"]})
    assert errors_of(bundle, ctx, "KafkaUser", None, wildcard) == [
        "manifests/kafka/user.yaml: KafkaUser app-client: spec.authorization.acls[9]"
        '.resource.patternType: topic ACLs must name one topic (literal), got prefix'
        ' "travel-"']


def test_duplicate_topic(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def same(o: dict[str, Any]) -> None:
        o["spec"]["topicName"] = "travel-generation.progress"
    errors = errors_of(bundle, ctx, "KafkaTopic", "travel-generation.completed", same)
    assert errors == [
        "manifests/kafka/topics.yaml: KafkaTopic travel-generation.completed:"
        " spec.topicName: topic travel-generation.progress is defined twice",
        # and the topic it was meant to be no longer exists for the user's ACL
        "manifests/kafka/user.yaml: KafkaUser app-client: spec.authorization.acls[1]"
        '.resource.name: no KafkaTopic "travel-generation.completed"']


def test_unsupported_kafka_version(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def newer(o: dict[str, Any]) -> None:
        o["spec"]["kafka"]["version"] = "4.1.0"
    assert errors_of(bundle, ctx, "Kafka", None, newer) == [
        'manifests/kafka/kafka.yaml: Kafka my-cluster: spec.kafka.version: "4.1.0" is not'
        " supported by Strimzi 0.47.0 (supported: 3.9.0, 3.9.1, 4.0.0; see versions.kafka)"]


def test_unknown_strimzi_release() -> None:
    data = inventory(versions={"strimzi": "0.48.0"})
    ctx = ctx_of(data)
    errors = kafka.checks(kafka.render(ctx), ctx)
    assert len(errors) == 1
    assert errors[0].startswith("manifests/kafka/kafka.yaml: Kafka my-cluster:"
                                " spec.kafka.version: the Kafka versions of Strimzi 0.48.0")


def test_api_version_not_served(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def v1(o: dict[str, Any]) -> None:
        o["apiVersion"] = "kafka.strimzi.io/v1"
    assert errors_of(bundle, ctx, "KafkaUser", None, v1) == [
        "manifests/kafka/user.yaml: KafkaUser app-client: apiVersion: kafka.strimzi.io/v1 is"
        " not served by Strimzi 0.47.0 (use kafka.strimzi.io/v1beta2)"]


def test_network_policy_must_match_listener_peers(bundle: Bundle,
                                                  ctx: dict[str, Any]) -> None:
    def wider(o: dict[str, Any]) -> None:
        o["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})
    assert errors_of(bundle, ctx, "NetworkPolicy", None, wider) == [
        "manifests/kafka/networkpolicy.yaml: NetworkPolicy my-cluster-kafka-ingress:"
        " spec.ingress: port 9092 must admit exactly the listener's networkPolicyPeers"
        " (manifests/kafka/kafka.yaml: Kafka my-cluster, spec.kafka.listeners[0])"]


def test_listener_without_peers(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def open_to_all(o: dict[str, Any]) -> None:
        del o["spec"]["kafka"]["listeners"][0]["networkPolicyPeers"]
    assert errors_of(bundle, ctx, "Kafka", None, open_to_all) == [
        "manifests/kafka/kafka.yaml: Kafka my-cluster: spec.kafka.listeners[0]"
        ".networkPolicyPeers: missing: Strimzi would open port 9092 to every pod"]


def test_network_policy_missing(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def elsewhere(o: dict[str, Any]) -> None:
        o["spec"]["podSelector"] = {"matchLabels": {"app": "something-else"}}
    errors = errors_of(bundle, ctx, "NetworkPolicy", None, elsewhere)
    assert errors == ["manifests/kafka/kafka.yaml: Kafka my-cluster: NetworkPolicy: none"
                      " selects the Kafka pods (strimzi.io/cluster=my-cluster,"
                      " strimzi.io/kind=Kafka, strimzi.io/name=my-cluster-kafka)"]


# Each remaining branch broken alone: the exact lines, nothing else ---------------------

K = "manifests/kafka/kafka.yaml: Kafka my-cluster"


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("transaction.state.log.replication.factor", 2,
     f"{K}: spec.kafka.config.transaction.state.log.replication.factor: must be <= broker"
     " count 1 (is 2)"),
    ("default.replication.factor", 2,
     f"{K}: spec.kafka.config.default.replication.factor: must be <= broker count 1 (is 2)"),
    ("transaction.state.log.min.isr", 2,
     f"{K}: spec.kafka.config.transaction.state.log.min.isr: must be <="
     " transaction.state.log.replication.factor 1 (is 2)"),
])
def test_each_kafka_setting_alone(bundle: Bundle, ctx: dict[str, Any], key: str, value: int,
                                  expected: str) -> None:
    def change(o: dict[str, Any]) -> None:
        o["spec"]["kafka"]["config"][key] = value
    assert errors_of(bundle, ctx, "Kafka", None, change) == [expected]


def test_user_without_an_acl_for_a_topic(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def drop(o: dict[str, Any]) -> None:
        acls = o["spec"]["authorization"]["acls"]
        acls[:] = [a for a in acls if a["resource"].get("name") != "travel-proposal.completed"]
    assert errors_of(bundle, ctx, "KafkaUser", None, drop) == [
        "manifests/kafka/user.yaml: KafkaUser app-client: spec.authorization.acls: no ACL"
        " for topic travel-proposal.completed"]


def extra(bundle: Bundle, kind: str, name: str, labels: dict[str, str],
          spec: dict[str, Any]) -> Bundle:
    doc = Document("manifests/kafka/extra.yaml", {
        "apiVersion": "kafka.strimzi.io/v1beta2", "kind": kind,
        "metadata": {"name": name, "namespace": "kafka", "labels": labels}, "spec": spec})
    return Bundle(documents=[*bundle.documents, doc], releases=bundle.releases)


@pytest.mark.parametrize(("kind", "labels", "spec", "got"), [
    ("KafkaUser", {"strimzi.io/cluster": "other"},
     {"authentication": {"type": "scram-sha-512"}}, '"other"'),
    ("KafkaNodePool", {"strimzi.io/cluster": "other"},
     {"replicas": 1, "roles": ["broker"]}, '"other"'),
    ("KafkaTopic", {}, {"partitions": 1, "replicas": 1}, "null"),
])
def test_a_cluster_label_naming_no_kafka(bundle: Bundle, ctx: dict[str, Any], kind: str,
                                         labels: dict[str, str], spec: dict[str, Any],
                                         got: str) -> None:
    errors = kafka.checks(extra(bundle, kind, "spare", labels, spec), ctx)
    assert errors == [f"manifests/kafka/extra.yaml: {kind} spare: metadata.labels."
                      f"strimzi.io/cluster: must name the Kafka cluster (my-cluster), got {got}"]
