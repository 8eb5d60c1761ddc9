"""Checks across objects: names, duplicates, namespaces."""

from __future__ import annotations

from typing import Any

import pytest
from validate_fixtures import SOURCE, edit, find, need_crd_schemas, valid_documents

from tasks.stack.render import Document, Release
from tasks.stack.validate import objects, validate_documents


def doc(kind: str, name: str, namespace: str | None = None, api: str = "v1",
        source: str = SOURCE, **extra: Any) -> Document:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return Document(source, {"apiVersion": api, "kind": kind, "metadata": meta, **extra})


def test_duplicates_name_both_files() -> None:
    docs = [doc("ConfigMap", "a", "app"), doc("ConfigMap", "a", "app", source="other.yaml"),
            doc("ConfigMap", "a", "kafka"),  # other namespace
            doc("Secret", "a", "app")]  # other kind
    assert objects.duplicates(docs) == [
        "other.yaml: ConfigMap a: duplicate object: core ConfigMap app/a is also defined in"
        f" {SOURCE}"]


def test_the_version_does_not_make_an_object_different() -> None:
    docs = [doc("HorizontalPodAutoscaler", "h", "app", api="autoscaling/v2"),
            doc("HorizontalPodAutoscaler", "h", "app", api="autoscaling/v1")]
    assert objects.duplicates(docs) == [
        f"{SOURCE}: HorizontalPodAutoscaler h: duplicate object: autoscaling"
        f" HorizontalPodAutoscaler app/h is also defined in {SOURCE}"]


def test_namespaces_must_exist() -> None:
    docs = [doc("Namespace", "app"), doc("ConfigMap", "a", "app"),
            doc("ConfigMap", "b", "kube-system"), doc("ConfigMap", "c", "kafka"),
            doc("ConfigMap", "d")]
    assert objects.namespace_problems(docs) == [
        f"{SOURCE}: ConfigMap c: metadata.namespace: namespace 'kafka' is not created by any"
        " component (create it as a Namespace in the component's manifests)",
        f"{SOURCE}: ConfigMap d: metadata.namespace: missing (namespaced objects name their"
        " namespace, or they land in whatever namespace applies them)"]


def test_cluster_scoped_kinds_have_no_namespace() -> None:
    docs = [doc("ClusterIssuer", "x", api="cert-manager.io/v1"),
            doc("ClusterRole", "y", "app", api="rbac.authorization.k8s.io/v1"),
            doc("Namespace", "app")]
    assert objects.namespace_problems(docs) == [
        f"{SOURCE}: ClusterRole y: metadata.namespace: ClusterRole is cluster-scoped; remove"
        " the namespace"]


def release(version: str = "0.47.0", source: str = "helm-values/strimzi.yaml") -> Release:
    return Release(name="strimzi", namespace="kafka", repo_name="strimzi",
                   repo_url="https://strimzi.io/charts/", chart="strimzi-kafka-operator",
                   version=version, values_source=source, values={})


def test_releases_need_their_namespace() -> None:
    rel = release()
    assert objects.namespace_problems([doc("Namespace", "kafka")], [rel]) == []
    assert objects.namespace_problems([], [rel]) == [
        "helm-values/strimzi.yaml: Release strimzi: namespace 'kafka' is not created by any"
        " component (create it as a Namespace in the component's manifests)"]


@pytest.mark.parametrize(("kind", "name", "problem"), [
    ("ConfigMap", "Api_Gateway", "'Api_Gateway' is not a DNS subdomain"),
    ("KafkaTopic", "travel-generation.progress", None),
    ("Service", "1st", "'1st' is not an RFC 1035 label"),
    ("Service", "api.gateway", "'api.gateway' is not an RFC 1035 label"),
    ("Namespace", "a.b", "'a.b' is not a DNS label"),
    ("ConfigMap", "x" * 254, "is not a DNS subdomain"),
])
def test_names(kind: str, name: str, problem: str | None) -> None:
    found = objects.metadata_problems(doc(kind, name, "app"))
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].startswith("metadata.name: ") and problem in found[0]


@pytest.mark.parametrize(("name", "problem"), [
    ("cert-manager-webhook:dynamic-serving", None),  # as cert-manager's chart names them
    ("system:Admin", None),
    ("a/b", "metadata.name: 'a/b' is not a path segment name (no '/' or '%')"),
    ("..", "metadata.name: '..' is not a path segment name (no '/' or '%')"),
])
def test_rbac_names_are_path_segments(name: str, problem: str | None) -> None:
    found = objects.metadata_problems(doc("Role", name, "app",
                                          api="rbac.authorization.k8s.io/v1"))
    assert found == ([problem] if problem else [])


def test_labels_and_missing_name() -> None:
    bad = Document(SOURCE, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "namespace": "app", "labels": {"app.kubernetes.io/name": "x" * 64, "-a": "b"}}})
    assert objects.metadata_problems(bad) == [
        "metadata.name: required field missing",
        f"metadata.labels['app.kubernetes.io/name']: invalid label value {'x' * 64!r} (max 63"
        " characters: letters, digits, '-', '_', '.')",
        "metadata.labels: invalid label key '-a'"]


def test_all_checks_together_on_broken_fixture() -> None:
    need_crd_schemas()
    docs = valid_documents()
    topic = find(docs, "KafkaTopic")
    docs.append(Document("manifests/kafka/more.yaml", edit(topic.obj, ("spec", "replicas"), 0)))
    found, _ = validate_documents(docs)
    assert found == [
        "manifests/kafka/more.yaml: KafkaTopic travel-generation.progress: spec.replicas: must"
        " be >= 1; got 0",
        "manifests/kafka/more.yaml: KafkaTopic travel-generation.progress: duplicate object:"
        " kafka.strimzi.io KafkaTopic kafka/travel-generation.progress is also defined in"
        f" {SOURCE}"]


def test_releases_are_pinned_and_unique() -> None:
    assert objects.release_problems([release("v1.13.1"), release("0.47.0-rc1", "b.yaml")]) == [
        "b.yaml: Release strimzi: duplicate release kafka/strimzi (also from"
        " helm-values/strimzi.yaml)"]
    assert objects.release_problems([release("latest")]) == [
        "helm-values/strimzi.yaml: Release strimzi: version: 'latest' is not an exact chart"
        " version (pin one, e.g. 1.13.1)"]
    assert len(objects.release_problems([release("0.47")])) == 1
    assert len(objects.release_problems([release("^0.47.0")])) == 1


def test_no_plaintext_secrets() -> None:
    assert objects.secret_problems(doc("Secret", "s", "app", type="Opaque")) == []
    assert objects.secret_problems(doc("Secret", "s", "app", stringData={"p": "x"})) == [
        "stringData: a Secret with values in plaintext; keep it SOPS-encrypted under secrets/"
        " (encrypted_regex ^(data|stringData)$)"]
