"""Cluster steps: facts in (as kubectl, kdiff and helm print them), commands out.

The kdiff program runs for real on object files laid out as kubectl lays them out; the
steps' plans are pure functions of the facts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tasks.cluster import kdiff, kube
from tasks.cluster.kube import Tools
from tasks.cluster.steps import HelmReleaseStep, ObjectsStep
from tasks.engine.errors import UserError
from tasks.engine.facts import Facts, Raw
from tasks.stack.render import Document, Release

TOOLS = Tools(kubectl="/opt/bin/kubectl", helm="/opt/bin/helm", helm_major=4)
ISSUER = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
          "metadata": {"name": "letsencrypt-prod"}, "spec": {"acme": {"email": "a@b.c"}}}
NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}}


def write(folder: Path, name: str, obj: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(obj))


def test_kdiff_reports_new_changed_same_owner_and_ready(tmp_path: Path) -> None:
    live, merged = tmp_path / "LIVE", tmp_path / "MERGED"
    meta = {"resourceVersion": "7", "generation": 2, "uid": "u", "managedFields": [{}]}
    ready = {"conditions": [{"type": "Ready", "status": "False",
                             "message": "Failed to register ACME account: no such host"}]}
    write(live, "cert-manager.io.v1.ClusterIssuer..letsencrypt-prod",
          {**ISSUER, "metadata": {**ISSUER["metadata"], **meta}, "status": ready})
    write(merged, "cert-manager.io.v1.ClusterIssuer..letsencrypt-prod",
          {**ISSUER, "metadata": {**ISSUER["metadata"], "resourceVersion": "8"}})
    write(merged, "v1.Namespace..cert-manager", NS)
    owned = {**NS, "metadata": {"name": "app", "labels": {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}}
    write(live, "v1.Namespace..app", owned)
    write(merged, "v1.Namespace..app", {**owned, "metadata": {**owned["metadata"],
                                                               "annotations": {"x": "y"}}})
    proc = subprocess.run([sys.executable, str(kube.DIFF_PROGRAM), str(live), str(merged)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1  # something differs: kubectl's convention
    items = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(i["key"], i["state"]) for i in items] == [
        ("ClusterIssuer/-/letsencrypt-prod", "same"),
        ("Namespace/-/app", "changed"),
        ("Namespace/-/cert-manager", "new")]
    assert items[0]["ready"] == "False"
    assert items[0]["message"] == "Failed to register ACME account: no such host"
    assert items[1]["flux_owner"] == "flux-system/apps"
    assert "+    x: y" in items[1]["diff"]
    assert kdiff.main(["kdiff", str(live), str(live)]) == 0


# Strimzi's status shapes: a failing Kafka as Strimzi's PR #1689 shows it (its
# "NotReady: True" with reason and message, listeners and observedGeneration beside),
# a KafkaUser as the Strimzi docs' example of PR #6931, and a Ready Kafka with a Warning
# condition (StatusUtils.buildWarningCondition, Strimzi 0.47).
STRIMZI_STATUSES = [
    ("Kafka", {"conditions": [{
        "lastTransitionTime": "2019-06-06T17:22:16+0000", "type": "NotReady", "status": "True",
        "reason": "TimeoutException",
        "message": "Exceeded timeout of 300000ms while waiting for Pods resource"
                   " my-cluster-kafka-0 in namespace myproject to be ready"}],
        "listeners": [{"type": "plain", "addresses": [
            {"host": "my-cluster-kafka-bootstrap.myproject.svc", "port": 9092}]}],
        "observedGeneration": 5},
     ("False", "Exceeded timeout of 300000ms while waiting for Pods resource"
               " my-cluster-kafka-0 in namespace myproject to be ready")),
    ("KafkaUser", {"conditions": [{
        "lastTransitionTime": "2022-06-10T10:07:37.238065Z", "type": "NotReady",
        "status": "True", "reason": "InvalidResourceException",
        "message": "Simple authorization ACL rules are configured but not supported in the"
                   " Kafka cluster configuration."}]},
     ("False", "Simple authorization ACL rules are configured but not supported in the"
               " Kafka cluster configuration.")),
    ("Kafka", {"conditions": [
        {"type": "Warning", "status": "True", "reason": "KafkaStorage", "message": "x"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "2025-06-01T10:00:00Z"}],
        "observedGeneration": 1},
     ("True", "")),
]


@pytest.mark.parametrize(("kind", "status", "ready"), STRIMZI_STATUSES)
def test_kdiff_reads_strimzi_not_ready_as_not_ready_with_its_message(
        tmp_path: Path, kind: str, status: dict[str, object], ready: tuple[str, str]) -> None:
    obj = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": kind,
           "metadata": {"name": "my-cluster", "namespace": "kafka"}, "spec": {}}
    write(tmp_path / "LIVE", "k", {**obj, "status": status})
    write(tmp_path / "MERGED", "k", obj)
    (item,) = kdiff.compare(tmp_path / "LIVE", tmp_path / "MERGED")
    assert (item["state"], item["ready"], item["message"]) == ("same", *ready)


def diff_raw(*items: dict[str, object], rc: int = 1, stderr: str = "") -> Raw:
    return Raw("".join(json.dumps(i) + "\n" for i in items), rc, stderr)


def objects_step() -> ObjectsStep:
    waits = (kube.wait(TOOLS, "clusterissuer", "letsencrypt-prod", None, "Ready", 120),)
    return ObjectsStep("issuers", "cert-manager: ClusterIssuers", TOOLS,
                       [Document("manifests/cert-manager/namespace.yaml", NS),
                        Document("manifests/cert-manager/clusterissuers.yaml", ISSUER)],
                       waits=waits, must_be_ready=("ClusterIssuer/-/letsencrypt-prod",))


def plan_of(step: ObjectsStep, raw: Raw) -> list[tuple[str, list[str]]]:
    changes = step.plan(Facts({step.diff.key: raw}))
    return [(c.summary, [" ".join(cmd.argv) for cmd in c.commands]) for c in changes]


def test_objects_converged_and_ready_need_nothing() -> None:
    raw = diff_raw({"key": "Namespace/-/cert-manager", "state": "same"},
                   {"key": "ClusterIssuer/-/letsencrypt-prod", "state": "same",
                    "ready": "True"}, rc=0)
    assert plan_of(objects_step(), raw) == []


def test_objects_new_ones_are_applied_server_side_then_waited() -> None:
    raw = diff_raw({"key": "Namespace/-/cert-manager", "state": "new"},
                   {"key": "ClusterIssuer/-/letsencrypt-prod", "state": "new"})
    assert plan_of(objects_step(), raw) == [(
        "create Namespace/-/cert-manager, ClusterIssuer/-/letsencrypt-prod",
        ["/opt/bin/kubectl apply --server-side --field-manager=k3s-vps-platform"
         " --force-conflicts -f -",
         "/opt/bin/kubectl wait --for=condition=Ready --timeout=120s"
         " clusterissuer/letsencrypt-prod"])]
    change = objects_step().plan(Facts({objects_step().diff.key: raw}))[0]
    sent = list(yaml.safe_load_all(change.commands[0].stdin))
    assert sent == [NS, ISSUER]  # the manifests travel on stdin, never in argv


def test_objects_whose_crd_is_missing_are_planned_not_failed() -> None:
    raw = Raw("", 1, 'error: resource mapping not found for name: "letsencrypt-prod":'
                     ' no matches for kind "ClusterIssuer" in version "cert-manager.io/v1"\n'
                     "ensure CRDs are installed first\n")  # kubectl exits 1 here too
    ((summary, _),) = plan_of(objects_step(), raw)
    assert summary == "apply 2 objects (not there yet: ensure CRDs are installed first)"


@pytest.mark.parametrize(("stderr", "expected"), [
    ("The connection to the server 127.0.0.1:39113 was refused - did you specify the right"
     " host or port?\n",
     "reading issuers objects: the Kubernetes API is unreachable (The connection to the"
     " server 127.0.0.1:39113 was refused - did you specify the right host or port?): is"
     " K3s running on the first server, and the SSH tunnel up?"),
    ("error: You must be logged in to the server (Unauthorized)\n",
     "reading issuers objects: the API refused our credentials (Unauthorized): is the"
     " kubeconfig from this cluster? Re-run inv k3s.install to fetch it again"),
])
def test_an_api_that_fails_is_an_error_never_not_installed(stderr: str, expected: str) -> None:
    with pytest.raises(UserError) as info:
        objects_step().plan(Facts({objects_step().diff.key: Raw("", 1, stderr)}))
    assert str(info.value) == expected


def test_objects_owned_by_flux_are_reconciled_not_fought() -> None:
    raw = diff_raw({"key": "Namespace/-/cert-manager", "state": "changed",
                    "flux_owner": "flux-system/infra"},
                   {"key": "ClusterIssuer/-/letsencrypt-prod", "state": "same",
                    "ready": "True"})
    ((summary, argv),) = plan_of(objects_step(), raw)
    assert summary == "ask Flux to reconcile flux-system/infra (it manages objects that differ)"
    assert argv[0].startswith("/opt/bin/kubectl annotate --overwrite -n flux-system"
                              " kustomization.kustomize.toolkit.fluxcd.io/infra"
                              " reconcile.fluxcd.io/requestedAt=")


def test_objects_applied_but_not_ready_are_waited_for_and_verify_says_why() -> None:
    raw = diff_raw({"key": "Namespace/-/cert-manager", "state": "same"},
                   {"key": "ClusterIssuer/-/letsencrypt-prod", "state": "same",
                    "ready": "False", "message": "Failed to register ACME account"}, rc=0)
    step = objects_step()
    assert plan_of(step, raw) == [("wait for ClusterIssuer/-/letsencrypt-prod", [
        "/opt/bin/kubectl wait --for=condition=Ready --timeout=120s"
        " clusterissuer/letsencrypt-prod"])]
    assert step.verify(Facts({step.diff.key: raw})) == [
        "ClusterIssuer/-/letsencrypt-prod is not Ready: Failed to register ACME account"]


RELEASE = Release(name="cert-manager", namespace="cert-manager", repo_name="jetstack",
                  repo_url="https://charts.jetstack.io", chart="cert-manager",
                  version="v1.13.1", values_source="helm-values/cert-manager.yaml",
                  values={"installCRDs": True, "prometheus": {"enabled": True}})
LISTED = [{"name": "cert-manager", "namespace": "cert-manager", "revision": "1",
           "updated": "2026-12-01 10:00:00.0 +0000 UTC", "status": "deployed",
           "chart": "cert-manager-v1.13.1", "app_version": "v1.13.1"}]


def helm_step() -> HelmReleaseStep:
    return HelmReleaseStep("cert-manager", "cert-manager: chart", TOOLS, RELEASE,
                           archive=lambda r: Path(f"/cache/charts/{r.chart}-{r.version}.tgz"))


def helm_plan(listed: object, values: Raw) -> list[tuple[str, str]]:
    step = helm_step()
    facts = Facts({step.listed.key: Raw(json.dumps(listed), 0), step.values.key: values})
    return [(c.summary, " ".join(c.commands[0].argv)) for c in step.plan(facts)]


UPGRADE = ("/opt/bin/helm upgrade --install cert-manager /cache/charts/cert-manager-v1.13.1.tgz"
           " -n cert-manager --create-namespace -f - --wait --timeout=600s"
           " --rollback-on-failure")


def test_helm_release_converged() -> None:
    values = Raw('{"installCRDs":true,"prometheus":{"enabled":true}}', 0)
    assert helm_plan(LISTED, values) == []


@pytest.mark.parametrize(("listed", "values", "summary"), [
    ([], Raw("", 1, "Error: release: not found\n"),
     "install cert-manager/cert-manager: not installed (chart cert-manager v1.13.1)"),
    ([{**LISTED[0], "chart": "cert-manager-v1.12.0"}],
     Raw('{"installCRDs":true,"prometheus":{"enabled":true}}', 0),
     "upgrade cert-manager/cert-manager: chart is cert-manager-v1.12.0, want"
     " cert-manager-v1.13.1"),
    (LISTED, Raw('{"installCRDs":true,"prometheus":{"enabled":false}}', 0),
     "upgrade cert-manager/cert-manager: values differ from helm-values/cert-manager.yaml"
     " (prometheus.enabled)"),
    ([{**LISTED[0], "status": "failed"}],
     Raw('{"installCRDs":true,"prometheus":{"enabled":true}}', 0),
     "upgrade cert-manager/cert-manager: status is failed"),
])
def test_helm_release_differences(listed: object, values: Raw, summary: str) -> None:
    assert helm_plan(listed, values) == [(summary, UPGRADE)]


def test_helm_values_travel_on_stdin_and_helm3_uses_atomic() -> None:
    step = HelmReleaseStep("cm", "cm", Tools("/k", "/h", helm_major=3), RELEASE,
                           archive=lambda r: Path("/a.tgz"))
    facts = Facts({step.listed.key: Raw("[]", 0), step.values.key: Raw("", 1, "not found")})
    (command,) = step.plan(facts)[0].commands
    assert command.argv[-1] == "--atomic"
    assert yaml.safe_load(command.stdin) == RELEASE.values
    assert command.shown().endswith("<values of helm-values/cert-manager.yaml")


def test_helm_unreachable_is_an_error() -> None:
    step = helm_step()
    facts = Facts({step.listed.key: Raw("", 1, 'Error: Kubernetes cluster unreachable: Get'
                                                ' "https://127.0.0.1:1/version": dial tcp'
                                                ' 127.0.0.1:1: connect: connection refused\n'),
                   step.values.key: Raw("", 1, "")})
    with pytest.raises(UserError, match="listing Helm releases: the Kubernetes API is"
                                        " unreachable"):
        step.plan(facts)
