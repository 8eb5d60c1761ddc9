"""Schema validation: core kinds strictly against Kubernetes 1.33, custom kinds against
the CRD JSON schemas; a deliberately broken object of each kind is caught precisely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from validate_fixtures import (
    DELETE,
    SOURCE,
    find,
    need_crd_schemas,
    valid_documents,
    with_object,
)

from tasks.stack.render import Document
from tasks.stack.validate import crds, validate_documents
from tasks.stack.validate.schemas import ENV, SchemaStore, crd_dirs, is_core_group


@pytest.fixture(autouse=True)
def _schemas() -> None:
    need_crd_schemas()


def problems(docs: list[Document]) -> list[str]:
    found, _ = validate_documents(docs)
    return found


def test_valid_fixture_objects_pass_and_name_their_schema() -> None:
    docs = valid_documents()
    found, checked = validate_documents(docs)
    assert found == []
    assert len(checked) == len(docs) == 26
    schemas = {c.doc.kind: c.schema for c in checked}
    assert schemas["Deployment"] == "kubernetes 1.33 (kubernetes-validate)"
    assert schemas["KafkaTopic"].endswith("kafka.strimzi.io/kafkatopic_v1beta2.json")
    assert schemas["HelmChartConfig"].endswith("helm.cattle.io/helmchartconfig_v1.json")


# (kind, object name or None, field path, new value, expected problem after "<file>: ")
BROKEN: list[tuple[str, str | None, tuple[str | int, ...], Any, str]] = [
    ("Namespace", "app", ("spec",), {"finalizerz": []},
     "Namespace app: spec.finalizerz: unknown field (did you mean 'finalizers'?)"),
    ("Deployment", None, ("spec", "replicas"), "two",
     'Deployment api-gateway: spec.replicas: expected integer, got string "two"'),
    ("Deployment", None, ("spec", "template", "spec", "containers", 0, "resourcez"), {},
     "Deployment api-gateway: spec.template.spec.containers[0].resourcez: unknown field"
     " (did you mean 'resources'?)"),
    ("CronJob", None, ("spec", "schedule"), DELETE,
     "CronJob cleanup: spec.schedule: required field missing"),
    ("Service", None, ("spec", "ports", 0, "port"), "http",
     'Service api-gateway: spec.ports[0].port: expected integer, got string "http"'),
    ("Ingress", None, ("spec", "rules", 0, "http", "paths", 0, "pathType"), DELETE,
     "Ingress api-gateway: spec.rules[0].http.paths[0].pathType: required field missing"),
    ("HorizontalPodAutoscaler", None, ("spec", "maxReplicas"), DELETE,
     "HorizontalPodAutoscaler api-gateway: spec.maxReplicas: required field missing"),
    ("PodDisruptionBudget", None, ("spec", "minAvailable"), [1],
     "PodDisruptionBudget api-gateway: spec.minAvailable: expected string or integer, got"
     " array [1]"),
    ("NetworkPolicy", None, ("spec", "podSelector"), {"matchLabel": {}},
     "NetworkPolicy kafka-clients: spec.podSelector.matchLabel: unknown field (did you mean"
     " 'matchLabels'?)"),
    ("ConfigMap", None, ("data", "KAFKA_PORT"), 9092,
     "ConfigMap api-gateway: data.KAFKA_PORT: expected string, got integer 9092"),
    ("ServiceAccount", None, ("automountServiceAccountToken",), "no",
     'ServiceAccount api-gateway: automountServiceAccountToken: expected boolean, got string'
     ' "no"'),
    ("Secret", None, ("stringdata",), {"password": "<generate: 32 bytes>"},
     "Secret kafka-app-client: stringdata: unknown field (did you mean 'stringData'?)"),
    ("HelmChartConfig", None, ("spec", "valuesContent"), {"ports": {}},
     "HelmChartConfig traefik: spec.valuesContent: expected string, got object"
     ' {"ports": {}}'),
    ("ClusterIssuer", None, ("spec", "acme", "server"), DELETE,
     "ClusterIssuer letsencrypt-prod: spec.acme.server: required field missing"),
    ("GitRepository", None, ("spec", "interval"), "1 minute",
     "GitRepository flux-system: spec.interval: must match"
     ' ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$; got "1 minute"'),
    ("Kustomization", None, ("spec", "prune"), DELETE,
     "Kustomization flux-system: spec.prune: required field missing"),
    ("Kustomization", None, ("spec", "decryption", "provider"), "gpg",
     'Kustomization flux-system: spec.decryption.provider: must be one of "sops"; got "gpg"'),
    ("HelmRepository", None, ("spec", "url"), DELETE,
     "HelmRepository strimzi: spec.url: required field missing"),
    ("HelmRelease", None, ("spec", "chart", "spec", "sourceRef", "kind"), "GitRepo",
     'HelmRelease strimzi: spec.chart.spec.sourceRef.kind: must be one of "HelmRepository",'
     ' "GitRepository", "Bucket"; got "GitRepo"'),
    ("Kafka", None, ("spec", "kafka", "listeners", 0, "port"), 80,
     "Kafka my-cluster: spec.kafka.listeners[0].port: must be >= 9092; got 80"),
    ("Kafka", None, ("spec", "kafka", "listeners", 0, "authentication", "type"), "scram",
     'Kafka my-cluster: spec.kafka.listeners[0].authentication.type: must be one of "tls",'
     ' "scram-sha-512", "oauth", "custom"; got "scram"'),
    ("KafkaNodePool", None, ("spec", "roles"), ["controller", "worker"],
     'KafkaNodePool dual-role: spec.roles[1]: must be one of "controller", "broker"; got'
     ' "worker"'),
    ("KafkaTopic", None, ("spec", "replicas"), 0,
     "KafkaTopic travel-generation.progress: spec.replicas: must be >= 1; got 0"),
    ("KafkaUser", None, ("spec", "authentication", "type"), "scram-sha-256",
     'KafkaUser app-client: spec.authentication.type: must be one of "tls",'
     ' "tls-external", "scram-sha-512"; got "scram-sha-256"'),
    ("ServiceMonitor", None, ("spec", "endpoints", 0, "interval"), "30 seconds",
     "ServiceMonitor api-gateway: spec.endpoints[0].interval: must match"
     ' ^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?'
     '(([0-9]+)ms)?)$; got "30 seconds"'),
    ("PodMonitor", None, ("spec", "podMetricsEndpoints", 0, "portz"), "x",
     "PodMonitor kafka: spec.podMetricsEndpoints[0].portz: unknown field (did you mean"
     " 'port'?)"),
    # custom kinds are strict at the top level and in metadata too
    ("KafkaTopic", None, ("sepc",), {},
     "KafkaTopic travel-generation.progress: sepc: unknown field (did you mean 'spec'?)"),
    ("ClusterIssuer", None, ("metadata", "lables"), {},
     "ClusterIssuer letsencrypt-prod: metadata.lables: unknown field (did you mean"
     " 'labels'?)"),
    ("KafkaUser", None, ("metadata", "labels", "strimzi.io/cluster"), 1,
     'KafkaUser app-client: metadata.labels["strimzi.io/cluster"]: expected string, got'
     " integer 1"),
]


@pytest.mark.parametrize(("kind", "name", "path", "value", "expected"), BROKEN,
                         ids=[f"{b[0]}-{'.'.join(map(str, b[2]))}" for b in BROKEN])
def test_a_broken_object_of_each_kind_is_caught_precisely(
        kind: str, name: str | None, path: tuple[str | int, ...], value: Any,
        expected: str) -> None:
    assert problems(with_object(kind, path, value, name)) == [f"{SOURCE}: {expected}"]


def test_every_kind_we_emit_has_a_broken_case() -> None:
    assert {d.kind for d in valid_documents()} <= {b[0] for b in BROKEN}


@pytest.mark.parametrize(("api_version", "kind", "expected"), [
    ("extensions/v1beta1", "Ingress", "unknown kind: extensions/v1beta1 Ingress is not a"
     " Kubernetes 1.33 API; Ingress is served as networking.k8s.io/v1"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler", "unknown kind: autoscaling/v2beta2"
     " HorizontalPodAutoscaler is not a Kubernetes 1.33 API; HorizontalPodAutoscaler is"
     " served as autoscaling/v1, autoscaling/v2"),
    ("apps/v1", "Deploymnet", "unknown kind: apps/v1 Deploymnet is not a Kubernetes 1.33"
     " API"),
    # the package ships sub-object schemas (container-v1.json): not kinds
    ("v1", "Container", "unknown kind: v1 Container is not a Kubernetes 1.33 API"),
    ("cert-manager.io/v1", "ClusterIsuer", "unknown kind: ClusterIsuer is not a kind of"
     " cert-manager.io (known: certificate, certificaterequest, clusterissuer, issuer)"),
    ("kafka.strimzi.io/v1alpha9", "KafkaTopic", "unknown kind: kafka.strimzi.io has no"
     " version v1alpha9 of KafkaTopic (schemas exist for v1, v1alpha1, v1beta1, v1beta2)"),
])
def test_unknown_kinds_fail(api_version: str, kind: str, expected: str) -> None:
    doc = Document(SOURCE, {"apiVersion": api_version, "kind": kind,
                            "metadata": {"name": "x", "namespace": "app"}})
    found = problems([*valid_documents(), doc])
    assert found == [f"{SOURCE}: {kind} x: {expected}"]


def test_a_missing_schema_file_is_one_line_saying_how_to_fill_the_cache(
        tmp_path: Path) -> None:
    store = SchemaStore(dirs=[(".cache/crd-schemas", tmp_path / "none")])
    docs = [d for d in valid_documents() if d.api_version.startswith("kafka.strimzi.io")]
    found, _ = validate_documents(docs, store=store, namespaces=False)
    topic = ("kafka.strimzi.io/kafkatopic_v1beta2.json")
    line = [p for p in found if topic in p]
    assert line == [
        f"{SOURCE}: KafkaTopic travel-generation.progress: no JSON schema {topic} in"
        " .cache/crd-schemas: fill the cache: `kubectl get crd -o json | python -m"
        " tasks.stack.validate.crds` (or pipe a chart's CRD YAML), or copy"
        f" {topic} from the datreeio/CRDs-catalog repository into .cache/crd-schemas/"]
    assert len(found) == 4  # one line per missing file: Kafka, pool, topic, user


def test_a_missing_schema_is_reported_once_with_the_count(tmp_path: Path) -> None:
    store = SchemaStore(dirs=[("empty", tmp_path)])
    docs = valid_documents()
    topic = find(docs, "KafkaTopic")
    twin = Document("manifests/kafka/topics.yaml",
                    {**topic.obj, "metadata": {**topic.obj["metadata"], "name": "t2"}})
    found, _ = validate_documents([topic, twin], store=store, namespaces=False)
    assert len(found) == 1
    assert found[0].startswith(f"{SOURCE}: KafkaTopic travel-generation.progress (and 1 more"
                               " objects): no JSON schema")


def test_env_dir_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kafka.strimzi.io").mkdir()
    schema = {"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"replicas": {"type": "integer", "maximum": 1}},
        "additionalProperties": False}}}
    (tmp_path / "kafka.strimzi.io" / "kafkatopic_v1beta2.json").write_text(json.dumps(schema))
    monkeypatch.setenv(ENV, str(tmp_path))
    assert crd_dirs()[0] == (f"${ENV} ({tmp_path})", tmp_path)
    store = SchemaStore()
    topic = find(with_object("KafkaTopic", ("spec", "replicas"), 3), "KafkaTopic")
    found, checked = validate_documents([topic], store=store, namespaces=False)
    assert checked[0].schema == f"${ENV} ({tmp_path})/kafka.strimzi.io/kafkatopic_v1beta2.json"
    assert found == [
        f"{SOURCE}: KafkaTopic travel-generation.progress: spec.partitions: unknown field",
        f"{SOURCE}: KafkaTopic travel-generation.progress: spec.replicas: must be <= 1; got 3"]


def test_validators_are_compiled_once_per_kind() -> None:
    store = SchemaStore()
    first = store.lookup("apps/v1", "Deployment")
    assert store.lookup("apps/v1", "Deployment") is first
    assert first.validator is not None


@pytest.mark.parametrize(("group", "core"), [
    ("", True), ("apps", True), ("networking.k8s.io", True), ("policy", True),
    ("cert-manager.io", False), ("kafka.strimzi.io", False), ("helm.cattle.io", False),
])
def test_core_groups(group: str, core: bool) -> None:
    assert is_core_group(group) is core


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1}
                note: {type: string, nullable: true}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def test_crds_fill_the_cache_with_strict_schemas(tmp_path: Path) -> None:
    (tmp_path / "crds.yaml").write_text(CRD + "---\napiVersion: v1\nkind: ConfigMap\n")
    assert crds.main([str(tmp_path / "crds.yaml"), "--out", str(tmp_path / "out")]) == 0
    schema = json.loads((tmp_path / "out" / "example.com" / "widget_v1.json").read_text())
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["note"]["type"] == ["string", "null"]
    assert "additionalProperties" not in spec["properties"]["extra"]

    store = SchemaStore(dirs=[("cache", tmp_path / "out")])
    widget = Document(SOURCE, {"apiVersion": "example.com/v1", "kind": "Widget",
                               "metadata": {"name": "w", "namespace": "app"},
                               "spec": {"size": 0, "note": None, "colour": "red",
                                        "extra": {"any": 1}}})
    found, checked = validate_documents([widget], store=store, namespaces=False)
    assert checked[0].schema == "cache/example.com/widget_v1.json"
    assert found == [f"{SOURCE}: Widget w: spec.colour: unknown field",
                     f"{SOURCE}: Widget w: spec.size: must be >= 1; got 0"]


def test_crds_without_any_crd_fail(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    assert crds.main([str(tmp_path / "x.yaml"), "--out", str(tmp_path)]) == 1
