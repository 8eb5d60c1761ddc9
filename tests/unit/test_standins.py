"""The stand-in kubectl and helm (tests/standins/), and our cluster steps driven through them.

First the stand-ins themselves: what they print and store for each command line, in the
real tools' shapes and texts (quoted with their sources in standin_*.py). Then our real
code: ObjectsStep and HelmReleaseStep converged on a LocalTarget with Tools.env(), from an
empty (fresh K3s) cluster to converged, a no-op second run, drift, Flux-owned drift, an
unreachable API, a failure half-way, and a canary secret that never leaves stdin.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.cluster import kube
from tasks.cluster.kube import Tools
from tasks.cluster.steps import HelmReleaseStep, ObjectsStep
from tasks.engine.converge import converge
from tasks.engine.report import Reporter, Summary
from tasks.engine.step import Step
from tasks.repo import REPO_ROOT
from tasks.stack.render import Document, Release
from tests.standins.harness import Standins, chart_archive, owned_fields

CANARY = "canary-5f1c7a9e-never-in-argv"
NS = {"apiVersion": "v1", "kind": "Namespace",
      "metadata": {"name": "probe", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
CM = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "settings", "namespace": "probe"}, "data": {"mode": "strict"}}
ISSUER = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
          "metadata": {"name": "letsencrypt-prod"},
          "spec": {"acme": {"email": "ops@example.org",
                            "server": "https://acme-v02.api.letsencrypt.org/directory"}}}


def run(standins: Standins, binary: str, *args: str, stdin: bytes = b"",
        env: dict[str, str] | None = None) -> tuple[int, str, str]:
    exe = standins.kubectl if binary == "kubectl" else standins.helm
    proc = subprocess.run([str(exe), *args], input=stdin, capture_output=True, check=False,
                          env={**os.environ, "KUBECONFIG": str(standins.kubeconfig),
                               **(env or {})})
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def stream(*objs: dict[str, Any]) -> bytes:
    return yaml.safe_dump_all(list(objs), sort_keys=False).encode()


APPLY = ("apply", "--server-side", "--field-manager=k3s-vps-platform", "-f", "-")
DIFF = ("diff", "--server-side", "--field-manager=k3s-vps-platform", "-f", "-")


# The stand-ins on their own ------------------------------------------------------------

@pytest.mark.parametrize(("binary", "args", "shown"), [
    ("kubectl", ("frobnicate",), "kubectl frobnicate"),
    ("kubectl", ("apply", "-f", "-"), "kubectl apply -f -"),
    ("kubectl", ("diff", "--server-side", "-f", "-", "--prune"),
     "kubectl diff --server-side -f - --prune"),
    ("kubectl", ("get", "pods"), "kubectl get pods"),
    ("helm", ("install", "x", "y.tgz"), "helm install x y.tgz"),
    ("helm", ("list", "-A"), "helm list -A"),
    ("helm", ("upgrade", "--install", "x", "y.tgz", "--set", "a=1"),
     "helm upgrade --install x y.tgz --set a=1"),
])
def test_anything_not_understood_exits_2_and_says_so(standins: Standins, binary: str,
                                                     args: tuple[str, ...], shown: str) -> None:
    assert run(standins, binary, *args) == (2, "", f"stand-in: unsupported: {shown}\n")


def test_the_wrappers_refuse_to_run_without_their_state(standins: Standins) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STACK_STANDIN_STATE"}
    proc = subprocess.run([str(standins.kubectl), "version", "-o", "json"], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("stand-in kubectl: STACK_STANDIN_PYTHON and"
                                  " STACK_STANDIN_STATE must be set")


def test_every_call_is_logged_with_argv_environment_stdin_output_and_code(
        standins: Standins) -> None:
    rc, out, _ = run(standins, "kubectl", *APPLY, stdin=stream(NS),
                     env={"SOME_VARIABLE": "seen"})
    assert (rc, out) == (0, "namespace/probe serverside-applied\n")
    (call,) = standins.calls()
    assert call.binary == "kubectl"
    assert call.argv == (str(standins.kubectl), *APPLY)
    assert call.line == "kubectl apply --server-side --field-manager=k3s-vps-platform -f -"
    assert call.env["SOME_VARIABLE"] == "seen"
    assert call.env["KUBECONFIG"] == str(standins.kubeconfig)
    assert yaml.safe_load(call.stdin) == NS
    assert (call.stdout, call.stderr, call.rc) == ("namespace/probe serverside-applied\n", "", 0)


def test_a_fresh_cluster_is_a_fresh_k3s(standins: Standins) -> None:
    assert sorted(k for k in standins.objects("Namespace")) == [
        "Namespace/-/default", "Namespace/-/kube-node-lease", "Namespace/-/kube-public",
        "Namespace/-/kube-system"]
    assert "CustomResourceDefinition/-/helmchartconfigs.helm.cattle.io" in standins.objects()
    assert "CustomResourceDefinition/-/clusterissuers.cert-manager.io" not in standins.objects()


def test_version_in_the_real_tools_shapes(standins: Standins) -> None:
    rc, out, _ = run(standins, "kubectl", "version", "-o", "json")
    assert rc == 0
    data = json.loads(out)
    assert list(data) == ["clientVersion", "kustomizeVersion", "serverVersion"]
    assert list(data["clientVersion"]) == ["major", "minor", "gitVersion", "gitCommit",
                                           "gitTreeState", "buildDate", "goVersion",
                                           "compiler", "platform"]
    assert data["serverVersion"]["gitVersion"] == "v1.33.3+k3s1"
    assert (data["serverVersion"]["major"], data["serverVersion"]["minor"]) == ("1", "33")
    assert run(standins, "helm", "version", "--short") == (0, "v4.1.4+gstandin\n", "")
    standins.configure(helm_version="v3.17.2+gstandin")
    assert run(standins, "helm", "version", "--short") == (0, "v3.17.2+gstandin\n", "")


def test_diff_lays_out_live_and_merged_as_kubectl_and_splits_the_diff_program_as_kubectl(
        standins: Standins, tmp_path: Path) -> None:
    run(standins, "kubectl", *APPLY, stdin=stream(NS))
    seen = tmp_path / "seen"
    probe = tmp_path / "probe-diff"
    probe.write_text(f"""#!/bin/sh
echo "$@" > {seen}/args
cp -r "$1" {seen}/live; cp -r "$2" {seen}/merged
echo "the program's own output"; exit 1
""")
    probe.chmod(0o755)
    seen.mkdir()
    # kubectl keeps the words after the program only if they match ^[a-zA-Z0-9-=]+$,
    # and puts them after the two folders
    rc, out, err = run(standins, "kubectl", *DIFF, stdin=stream(NS, CM),
                       env={"KUBECTL_EXTERNAL_DIFF": f"{probe} -N --color=never /a/b.py x.y"})
    assert (rc, out, err) == (1, "the program's own output\n", "")
    live_dir, merged_dir, *rest = (seen / "args").read_text().split()
    assert Path(live_dir).name.startswith("LIVE-") and Path(merged_dir).name.startswith("MERGED-")
    assert rest == ["-N", "--color=never"]
    assert sorted(p.name for p in (seen / "live").iterdir()) == [
        "v1.ConfigMap.probe.settings", "v1.Namespace..probe"]
    assert (seen / "live" / "v1.ConfigMap.probe.settings").read_text() == ""  # new: empty
    merged = yaml.safe_load((seen / "merged" / "v1.ConfigMap.probe.settings").read_text())
    assert merged["data"] == {"mode": "strict"}
    assert "managedFields" not in merged["metadata"]
    live_ns = yaml.safe_load((seen / "live" / "v1.Namespace..probe").read_text())
    assert live_ns["metadata"]["labels"] == {
        "kubernetes.io/metadata.name": "probe", "pod-security.kubernetes.io/enforce": "restricted"}
    assert live_ns["status"] == {"phase": "Active"}
    assert not Path(live_dir).exists()  # removed afterwards, as kubectl does


def test_the_diff_programs_exit_code_is_kubectls(standins: Standins, tmp_path: Path) -> None:
    three = tmp_path / "three"
    three.write_text("#!/bin/sh\necho oops >&2\nexit 3\n")
    three.chmod(0o755)
    assert run(standins, "kubectl", *DIFF, stdin=stream(NS),
               env={"KUBECTL_EXTERNAL_DIFF": "false"}) == (1, "", "")
    assert run(standins, "kubectl", *DIFF, stdin=stream(NS),
               env={"KUBECTL_EXTERNAL_DIFF": str(three)}) == (
        2, "", f'oops\nerror: failed to run "{three}": exit status 3\n')
    assert run(standins, "kubectl", *DIFF, stdin=stream(NS),
               env={"KUBECTL_EXTERNAL_DIFF": "no-such-diff-program"}) == (
        2, "", 'error: failed to run "no-such-diff-program": exec: "no-such-diff-program":'
               " executable file not found in $PATH\n")


def test_diff_and_apply_of_a_kind_whose_crd_is_not_installed(standins: Standins) -> None:
    mapping = ('resource mapping not found for name: "letsencrypt-prod" namespace: "" from'
               ' "STDIN": no matches for kind "ClusterIssuer" in version "cert-manager.io/v1"\n'
               "ensure CRDs are installed first\n")
    # the texts and exit codes of the real kubectl 1.33.9 (diff: 2; apply: 1, the objects
    # it could map applied)
    assert run(standins, "kubectl", *DIFF, stdin=stream(NS, ISSUER)) == (2, "",
                                                                         f"error: {mapping}")
    assert run(standins, "kubectl", *APPLY, stdin=stream(NS, ISSUER)) == (
        1, "namespace/probe serverside-applied\n", f"error: {mapping}")
    assert "Namespace/-/probe" in standins.objects()
    assert run(standins, "kubectl", "create", "--dry-run=server", "-f", "-",
               stdin=stream(ISSUER)) == (1, "", f"error: {mapping}")


def test_objects_in_a_namespace_that_does_not_exist(standins: Standins) -> None:
    missing = 'Error from server (NotFound): namespaces "probe" not found\n'
    assert run(standins, "kubectl", *DIFF, stdin=stream(CM)) == (2, "", missing)
    assert run(standins, "kubectl", *APPLY, stdin=stream(CM)) == (1, "", missing)
    # in one stream, the namespace first: apply creates it before the ConfigMap
    assert run(standins, "kubectl", *APPLY, stdin=stream(NS, CM)) == (
        0, "namespace/probe serverside-applied\nconfigmap/settings serverside-applied\n", "")
    assert run(standins, "kubectl", "create", "--dry-run=server", "-f", "-",
               stdin=stream(CM)) == (1, "", 'Error from server (AlreadyExists): error when'
                                            ' creating "STDIN": configmaps "settings" already'
                                            ' exists\n')


def test_a_crd_comes_with_the_helm_release_of_its_chart(standins: Standins, tmp_path: Path
                                                        ) -> None:
    archive = chart_archive(tmp_path, "cert-manager", "v1.13.1", app_version="v1.13.1")
    rc, out, _ = run(standins, "helm", "upgrade", "--install", "cert-manager", str(archive),
                     "-n", "cert-manager", "--create-namespace", "-f", "-", "--wait",
                     "--timeout=600s", "--rollback-on-failure", stdin=b"installCRDs: true\n")
    assert rc == 0
    assert out.splitlines()[0] == 'Release "cert-manager" does not exist. Installing it now.'
    assert "CustomResourceDefinition/-/clusterissuers.cert-manager.io" in standins.objects()
    assert standins.object("Namespace/-/cert-manager")["metadata"]["labels"] == {  # type: ignore[index]
        "kubernetes.io/metadata.name": "cert-manager", "name": "cert-manager"}
    assert run(standins, "kubectl", *APPLY, stdin=stream(ISSUER)) == (
        0, "clusterissuer.cert-manager.io/letsencrypt-prod serverside-applied\n", "")
    assert run(standins, "kubectl", "wait", "--for=condition=Ready", "--timeout=120s",
               "clusterissuer/letsencrypt-prod") == (
        0, "clusterissuer.cert-manager.io/letsencrypt-prod condition met\n", "")


def test_a_crd_in_a_charts_crds_folder_and_a_crd_object_applied(standins: Standins,
                                                                 tmp_path: Path) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    archive = chart_archive(tmp_path, "widgets", "0.1.0", crds=[crd])
    assert run(standins, "helm", "upgrade", "--install", "widgets", str(archive), "-n",
               "default", "-f", "-", stdin=b"{}")[0] == 0
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": "default"}}
    assert run(standins, "kubectl", *APPLY, stdin=stream(widget))[1] == \
        "widget.example.com/w serverside-applied\n"
    gadget_crd = json.loads(json.dumps(crd).replace("widget", "gadget").replace("Widget", "Gadget"))
    assert run(standins, "kubectl", *APPLY, stdin=stream(gadget_crd))[0] == 0
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget",
              "metadata": {"name": "g", "namespace": "default"}}
    assert run(standins, "kubectl", *APPLY, stdin=stream(gadget))[1] == \
        "gadget.example.com/g serverside-applied\n"


def test_strimzi_kinds_answer_in_strimzi_shapes_and_wait_takes_several(
        standins: Standins) -> None:
    standins.install_crds("strimzi-kafka-operator")
    meta = {"namespace": "kafka", "labels": {"strimzi.io/cluster": "my-cluster"}}
    kafka = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka",
             "metadata": {"name": "my-cluster", "namespace": "kafka"}, "spec": {}}
    pool = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaNodePool",
            "metadata": {"name": "dual-role", **meta},
            "spec": {"replicas": 1, "roles": ["controller", "broker"]}}
    topics = [{"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic",
               "metadata": {"name": name, **meta}, "spec": {}} for name in ("a", "b")]
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kafka"}}
    assert run(standins, "kubectl", *APPLY, stdin=stream(ns, kafka, pool, *topics))[0] == 0
    # a node pool has no Ready condition (Strimzi 0.47 KafkaPool.generateNodePoolStatus)
    seen = standins.object("KafkaNodePool/kafka/dual-role")
    assert seen is not None
    assert seen["status"] == {"observedGeneration": 1, "nodeIds": [0], "replicas": 1,
                              "roles": ["broker", "controller"],
                              "clusterId": "c3RhbmQtaW4tY2x1c3Rlcg"}
    wait = ("wait", "--for=condition=Ready", "--timeout=60s")
    assert run(standins, "kubectl", *wait, "kafkatopic.kafka.strimzi.io/a",
               "kafkatopic.kafka.strimzi.io/b", "-n", "kafka") == (
        0, "kafkatopic.kafka.strimzi.io/a condition met\n"
           "kafkatopic.kafka.strimzi.io/b condition met\n", "")
    standins.inject(not_ready={"Kafka/kafka/my-cluster": "Kafka cluster is being deployed",
                               "KafkaTopic/kafka/b": "Unknown topic config name: x"})
    seen = standins.object("Kafka/kafka/my-cluster")
    assert seen is not None
    assert [(c["type"], c["status"], c["message"]) for c in seen["status"]["conditions"]] == [
        ("NotReady", "True", "Kafka cluster is being deployed")]
    seen = standins.object("KafkaTopic/kafka/b")
    assert seen is not None
    assert [(c["type"], c["status"]) for c in seen["status"]["conditions"]] == [
        ("Ready", "False")]
    assert run(standins, "kubectl", *wait, "kafka.kafka.strimzi.io/my-cluster", "-n",
               "kafka") == (
        1, "", "error: timed out waiting for the condition on kafkas/my-cluster\n")
    assert run(standins, "kubectl", *wait, "kafkatopic.kafka.strimzi.io/a",
               "kafkatopic.kafka.strimzi.io/b", "-n", "kafka") == (
        1, "kafkatopic.kafka.strimzi.io/a condition met\n",
        "error: timed out waiting for the condition on kafkatopics/b\n")


def test_wait_rollout_annotate_and_get(standins: Standins) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "probe"}, "spec": {"replicas": 2}}
    run(standins, "kubectl", *APPLY, stdin=stream(NS, deploy))
    assert run(standins, "kubectl", "wait", "--for=condition=Available", "--timeout=60s",
               "deployment/web", "-n", "probe") == (
        0, "deployment.apps/web condition met\n", "")
    assert run(standins, "kubectl", "rollout", "status", "deployment/web", "-n", "probe",
               "--timeout=60s") == (0, 'deployment "web" successfully rolled out\n', "")
    assert run(standins, "kubectl", "wait", "--for=condition=Available", "--timeout=60s",
               "deployment/nope", "-n", "probe") == (
        1, "", 'Error from server (NotFound): deployments.apps "nope" not found\n')
    assert run(standins, "kubectl", "wait", "--for=condition=Ready", "--timeout=60s",
               "clusterissuer/x") == (
        1, "", 'error: the server doesn\'t have a resource type "clusterissuer"\n')
    standins.inject(not_ready={"Deployment/probe/web": "0/2 replicas available"})
    assert run(standins, "kubectl", "wait", "--for=condition=Available", "--timeout=60s",
               "deployment/web", "-n", "probe") == (
        1, "", "error: timed out waiting for the condition on deployments/web\n")
    assert run(standins, "kubectl", "rollout", "status", "deployment/web", "-n", "probe",
               "--timeout=60s") == (
        1, 'Waiting for deployment "web" rollout to finish: 0 of 2 updated replicas are'
           " available...\n", "error: timed out waiting for the condition\n")
    assert run(standins, "kubectl", "annotate", "--overwrite", "-n", "probe",
               "deployment.apps/web", "note=x") == (0, "deployment.apps/web annotated\n", "")
    rc, out, _ = run(standins, "kubectl", "get", "deployment", "web", "-n", "probe", "-o",
                     "json")
    assert rc == 0
    got = json.loads(out)
    assert got["metadata"]["annotations"] == {"note": "x"}
    assert "managedFields" not in got["metadata"]
    assert out.startswith('{\n    "apiVersion": "apps/v1",\n')  # 4 spaces, sorted keys
    rc, out, _ = run(standins, "kubectl", "get", "deployments", "-A", "-o", "json")
    listed = json.loads(out)
    assert (listed["apiVersion"], listed["kind"], listed["metadata"]) == (
        "v1", "List", {"resourceVersion": ""})
    assert [i["metadata"]["name"] for i in listed["items"]] == ["web"]
    assert run(standins, "kubectl", "annotate", "-n", "probe", "deployment/web",
               "note=y") == (1, "", "error: --overwrite is false but found the following"
                                    " declared annotation(s): 'note' already has a value"
                                    " (x)\n")


def test_claims_events_and_the_service_proxy_in_kubectls_words(standins: Standins) -> None:
    monitoring = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": "monitoring"},
             "spec": {"storageClassName": "local-path", "accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "5Gi"}}}}
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": "data.17f3", "namespace": "monitoring"},
             "involvedObject": {"kind": "PersistentVolumeClaim", "name": "data",
                                "namespace": "monitoring"},
             "reason": "WaitForFirstConsumer", "type": "Normal",
             "message": "waiting for first consumer to be created before binding"}
    wait_create = ("wait", "--for=create", "--timeout=5s", "pvc/data", "-n", "monitoring")
    assert run(standins, "kubectl", *APPLY, stdin=stream(monitoring))[0] == 0
    assert run(standins, "kubectl", *wait_create) == (
        1, "", "error: timed out waiting for the condition\n")
    assert run(standins, "kubectl", *APPLY, stdin=stream(claim, event))[0] == 0
    assert run(standins, "kubectl", *wait_create) == (
        0, "persistentvolumeclaim/data condition met\n", "")
    rc, out, _ = run(standins, "kubectl", "get", "persistentvolumeclaims,events", "-n",
                     "monitoring", "-o", "json")
    listed = json.loads(out)
    assert (rc, listed["kind"]) == (0, "List")
    assert [(i["kind"], i["metadata"]["name"]) for i in listed["items"]] == [
        ("PersistentVolumeClaim", "data"), ("Event", "data.17f3")]
    assert listed["items"][0]["status"] == {"accessModes": ["ReadWriteOnce"],
                                            "capacity": {"storage": "5Gi"}, "phase": "Bound"}
    standins.inject(not_ready={"PersistentVolumeClaim/monitoring/data": "no volume"})
    rc, out, _ = run(standins, "kubectl", "get", "pvc", "data", "-n", "monitoring", "-o", "json")
    assert json.loads(out)["status"] == {"phase": "Pending"}
    assert run(standins, "kubectl", "wait", "--for=jsonpath={.status.phase}=Bound",
               "--timeout=5s", "pvc/data", "-n", "monitoring") == (
        1, "", "error: timed out waiting for the condition on persistentvolumeclaims/data\n")

    path = "/api/v1/namespaces/monitoring/services/prom:http-web/proxy/api/v1/targets"
    assert run(standins, "kubectl", "get", "--raw", path) == (
        1, "", 'Error from server (NotFound): services "prom" not found\n')
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "prom", "namespace": "monitoring"},
               "spec": {"ports": [{"name": "http-web", "port": 9090}]}}
    run(standins, "kubectl", *APPLY, stdin=stream(service))
    body = '{"status":"success","data":{"activeTargets":[],"droppedTargets":[]}}'
    standins.configure(service_proxy={"monitoring/prom:http-web": {"/api/v1/targets": body}})
    assert run(standins, "kubectl", "get", "--raw", path) == (0, body, "")
    standins.inject(not_ready={"Service/monitoring/prom": "no pod"})
    assert run(standins, "kubectl", "get", "--raw", path) == (
        1, "", 'Error from server (ServiceUnavailable): no endpoints available for service'
               ' "prom"\n')
    standins.inject(unreachable=True)
    assert run(standins, "kubectl", "get", "--raw", path) == (
        1, "", "The connection to the server 127.0.0.1:6443 was refused - did you specify the"
               " right host or port?\n")
    assert run(standins, "kubectl", "get", "--raw", "/metrics")[0] == 2


def test_secret_values_are_masked_in_the_diff_as_kubectl_masks_them(
        standins: Standins, tmp_path: Path) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s", "namespace": "default"},
              "stringData": {"same": "unchanged", "password": CANARY}}
    run(standins, "kubectl", *APPLY, stdin=stream(secret))
    stored = standins.object("Secret/default/s")
    assert stored is not None
    assert stored["data"] == {"password": base64.b64encode(CANARY.encode()).decode(),
                              "same": base64.b64encode(b"unchanged").decode()}
    assert "stringData" not in stored
    copy_dirs = tmp_path / "copy"
    program = tmp_path / "copy-diff"
    program.write_text(f'#!/bin/sh\ncp -r "$1" {copy_dirs}-live; cp -r "$2" {copy_dirs}-merged\n'
                       "exit 1\n")
    program.chmod(0o755)
    changed = {**secret, "stringData": {"same": "unchanged", "password": "other"}}
    run(standins, "kubectl", *DIFF, stdin=stream(changed),
        env={"KUBECTL_EXTERNAL_DIFF": str(program)})
    live = yaml.safe_load(Path(f"{copy_dirs}-live/v1.Secret.default.s").read_text())
    merged = yaml.safe_load(Path(f"{copy_dirs}-merged/v1.Secret.default.s").read_text())
    assert live["data"] == {"password": "*** (before)", "same": "***"}
    assert merged["data"] == {"password": "*** (after)", "same": "***"}


def test_server_side_apply_keeps_others_fields_and_conflicts_over_theirs(
        standins: Standins) -> None:
    run(standins, "kubectl", *APPLY, stdin=stream(NS, CM))
    cm = standins.object("ConfigMap/probe/settings")
    assert cm is not None
    assert owned_fields(cm, "k3s-vps-platform") == {".data.mode"}
    # another manager adds a field: ours is untouched, and re-applying keeps theirs
    standins.edit("ConfigMap/probe/settings", {("data", "extra"): "theirs"}, manager="operator")
    assert run(standins, "kubectl", *APPLY, stdin=stream(CM))[0] == 0
    assert standins.object("ConfigMap/probe/settings")["data"] == {  # type: ignore[index]
        "extra": "theirs", "mode": "strict"}
    # `kubectl edit` of our field takes it over: applying ours again conflicts
    standins.edit("ConfigMap/probe/settings", {("data", "mode"): "edited"})
    rc, out, err = run(standins, "kubectl", *APPLY, stdin=stream(CM))
    assert (rc, out) == (1, "")
    assert err.splitlines()[0] == ('error: Apply failed with 1 conflict: conflict with'
                                   ' "kubectl-edit" using v1: .data.mode')
    assert err.splitlines()[-1] == ("See https://kubernetes.io/docs/reference/using-api/"
                                    "server-side-apply/#conflicts")
    rc, _, err = run(standins, "kubectl", *DIFF, stdin=stream(CM),
                     env={"KUBECTL_EXTERNAL_DIFF": "true"})
    assert rc == 2
    assert err.splitlines()[-1] == ('Error from server (Conflict): Apply failed with 1'
                                    ' conflict: conflict with "kubectl-edit" using v1:'
                                    ' .data.mode')


def test_fields_we_stop_setting_are_removed(standins: Standins) -> None:
    run(standins, "kubectl", *APPLY, stdin=stream(NS, {**CM, "data": {"mode": "strict",
                                                                        "old": "1"}}))
    run(standins, "kubectl", *APPLY, stdin=stream(CM))
    assert standins.object("ConfigMap/probe/settings")["data"] == {  # type: ignore[index]
        "mode": "strict"}


UNREACHABLE_KUBECTL = ("The connection to the server 127.0.0.1:6443 was refused - did you"
                       " specify the right host or port?")
CREDENTIALS = "the server has asked for the client to provide credentials"


@pytest.mark.parametrize(("inject", "binary", "args", "rc", "last"), [
    ("unreachable", "kubectl", DIFF, 2,
     'error: unable to recognize "STDIN": Get "https://127.0.0.1:6443/api?timeout=32s":'
     " dial tcp 127.0.0.1:6443: connect: connection refused"),
    ("unreachable", "kubectl", APPLY, 1,
     'error: error validating "STDIN": error validating data: failed to download openapi:'
     ' Get "https://127.0.0.1:6443/openapi/v2?timeout=32s": dial tcp 127.0.0.1:6443:'
     " connect: connection refused; if you choose to ignore these errors, turn validation"
     " off with --validate=false"),
    ("unreachable", "kubectl", ("wait", "--for=condition=Ready", "--timeout=5s", "ns/x"), 1,
     UNREACHABLE_KUBECTL),
    ("unreachable", "helm", ("list", "-A", "--deployed", "--failed", "--pending", "-o",
                             "json"), 1,
     'Error: kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp'
     " 127.0.0.1:6443: connect: connection refused"),
    ("unauthorized", "kubectl", DIFF, 2, f'error: unable to recognize "STDIN": {CREDENTIALS}'),
    ("unauthorized", "kubectl", ("rollout", "status", "deployment/x", "-n", "y",
                                 "--timeout=5s"), 1,
     f"error: You must be logged in to the server ({CREDENTIALS})"),
    ("unauthorized", "helm", ("get", "values", "x", "-n", "y", "-o", "json"), 1,
     f"Error: kubernetes cluster unreachable: {CREDENTIALS}"),
])
def test_api_failures_in_the_real_tools_words(standins: Standins, inject: str, binary: str,
                                              args: tuple[str, ...], rc: int, last: str) -> None:
    standins.inject(**{inject: True})
    got_rc, out, err = run(standins, binary, *args, stdin=stream(NS))
    assert (got_rc, out, err.splitlines()[-1]) == (rc, "", last)


def test_without_kubeconfig_the_tools_try_localhost_8080(standins: Standins) -> None:
    env = {"KUBECONFIG": str(standins.root / "absent")}
    assert run(standins, "kubectl", "get", "ns", "-o", "json", env=env)[2].splitlines()[-1] \
        == ("The connection to the server localhost:8080 was refused - did you specify the"
            " right host or port?")
    assert run(standins, "helm", "list", "-A", "-o", "json", env=env)[2] == (
        'Error: kubernetes cluster unreachable: Get "http://localhost:8080/version": dial tcp'
        " 127.0.0.1:8080: connect: connection refused\n")


HELM_LIST = ("list", "-A", "--deployed", "--failed", "--pending", "-o", "json")


def upgrade_args(archive: Path, *, flag: str = "--rollback-on-failure") -> tuple[str, ...]:
    return ("upgrade", "--install", "probe", str(archive), "-n", "probe",
            "--create-namespace", "-f", "-", "--wait", "--timeout=600s", flag)


def test_helm_install_list_values_upgrade_in_helms_shapes(standins: Standins, tmp_path: Path
                                                         ) -> None:
    assert run(standins, "helm", *HELM_LIST) == (0, "[]\n", "")
    assert run(standins, "helm", "get", "values", "probe", "-n", "probe", "-o", "json") == (
        1, "", "Error: release: not found\n")
    v1 = chart_archive(tmp_path, "probe", "1.0.0", app_version="2.0")
    rc, out, err = run(standins, "helm", *upgrade_args(v1), stdin=b"a: 1\nb: {c: <x>}\n")
    assert (rc, err) == (0, "")
    assert out == ('Release "probe" does not exist. Installing it now.\n'
                   "NAME: probe\nLAST DEPLOYED: Mon Jan  5 09:00:20 2026\nNAMESPACE: probe\n"
                   "STATUS: deployed\nREVISION: 1\nDESCRIPTION: Install complete\n"
                   "TEST SUITE: None\n")
    assert run(standins, "helm", *HELM_LIST) == (0, (
        '[{"name":"probe","namespace":"probe","revision":"1","updated":"2026-01-05'
        ' 09:00:20.100020001 +0000 UTC","status":"deployed","chart":"probe-1.0.0",'
        '"app_version":"2.0"}]\n'), "")
    assert run(standins, "helm", "get", "values", "probe", "-n", "probe", "-o", "json") == (
        0, '{"a":1,"b":{"c":"\\u003cx\\u003e"}}\n', "")
    v2 = chart_archive(tmp_path, "probe", "1.1.0", app_version="2.1")
    rc, out, _ = run(standins, "helm", *upgrade_args(v2), stdin=b"")
    assert out.splitlines()[0] == 'Release "probe" has been upgraded. Happy Helming!'
    assert run(standins, "helm", "get", "values", "probe", "-n", "probe", "-o", "json") == (
        0, "null\n", "")
    release = standins.releases()["probe/probe"]
    assert [(r.revision, r.status, r.chart, r.version, r.app_version) for r in
            release.revisions] == [(1, "superseded", "probe", "1.0.0", "2.0"),
                                   (2, "deployed", "probe", "1.1.0", "2.1")]


def test_helm_upgrade_failing_with_rollback_leaves_the_previous_revision_deployed(
        standins: Standins, tmp_path: Path) -> None:
    v1 = chart_archive(tmp_path, "probe", "1.0.0")
    v2 = chart_archive(tmp_path, "probe", "2.0.0")
    run(standins, "helm", *upgrade_args(v1), stdin=b"a: 1\n")
    standins.inject(helm_fail={"probe/probe": ("context deadline exceeded", 1)})
    assert run(standins, "helm", *upgrade_args(v2), stdin=b"a: 2\n") == (
        1, "", "Error: UPGRADE FAILED: release probe failed, and has been rolled back due to"
               " rollback-on-failure being set: context deadline exceeded\n")
    release = standins.releases()["probe/probe"]
    assert [(r.revision, r.status, r.version, r.values) for r in release.revisions] == [
        (1, "superseded", "1.0.0", {"a": 1}), (2, "failed", "2.0.0", {"a": 2}),
        (3, "deployed", "1.0.0", {"a": 1})]
    assert release.current.description == "Rollback to 1"
    # used up: the next upgrade goes through
    assert run(standins, "helm", *upgrade_args(v2), stdin=b"a: 2\n")[0] == 0
    assert standins.releases()["probe/probe"].current.version == "2.0.0"


def test_helm_install_failing(standins: Standins, tmp_path: Path) -> None:
    v1 = chart_archive(tmp_path, "probe", "1.0.0")
    standins.inject(helm_fail={"probe/probe": "boom"})
    assert run(standins, "helm", *upgrade_args(v1), stdin=b"{}")[2] == (
        "Error: release probe failed, and has been uninstalled due to rollback-on-failure"
        " being set: boom\n")
    assert standins.releases() == {}
    args = [a for a in upgrade_args(v1) if a != "--rollback-on-failure"]
    assert run(standins, "helm", *args, stdin=b"{}")[2] == "Error: boom\n"
    assert standins.releases()["probe/probe"].current.status == "failed"
    assert json.loads(run(standins, "helm", *HELM_LIST)[1])[0]["status"] == "failed"


def test_helm_waits_on_the_charts_objects(standins: Standins, tmp_path: Path) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "probe"},
              "spec": {"replicas": 1}}
    standins.configure(chart_objects={"probe": [deploy]})
    standins.inject(not_ready={"Deployment/probe/probe": "image pull back-off"})
    v1 = chart_archive(tmp_path, "probe", "1.0.0")
    assert run(standins, "helm", *upgrade_args(v1), stdin=b"{}")[2] == (
        "Error: release probe failed, and has been uninstalled due to rollback-on-failure"
        " being set: resource Deployment/probe/probe not ready. status: InProgress, message:"
        " Available: 0/1\ncontext deadline exceeded\n")
    standins.clear_injections()
    assert run(standins, "helm", *upgrade_args(v1), stdin=b"{}")[0] == 0
    created = standins.object("Deployment/probe/probe")
    assert created is not None
    assert created["metadata"]["annotations"] == {"meta.helm.sh/release-name": "probe",
                                                  "meta.helm.sh/release-namespace": "probe"}


def test_helm_3_has_no_rollback_on_failure_flag(standins: Standins, tmp_path: Path) -> None:
    standins.configure(helm_version="v3.17.2+gstandin")
    v1 = chart_archive(tmp_path, "probe", "1.0.0")
    assert run(standins, "helm", *upgrade_args(v1), stdin=b"{}") == (
        1, "", "Error: unknown flag: --rollback-on-failure\n")  # the real helm 3.17.2
    assert run(standins, "helm", *upgrade_args(v1, flag="--atomic"), stdin=b"{}")[0] == 0
    standins.inject(unreachable=True)
    assert run(standins, "helm", *HELM_LIST)[2].startswith(
        "Error: Kubernetes cluster unreachable: ")  # helm 3 capitalises it


def test_helm_reads_a_real_helm_package_archive(standins: Standins, tmp_path: Path) -> None:
    real = REPO_ROOT / ".cache" / "bin" / "helm-v33"
    if not real.is_file():
        pytest.skip(f"{real} missing: run .ci/install-helm (real helm 4.1.4)")
    chart = tmp_path / "src" / "packaged"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: packaged\nversion: 3.2.1\n"
                                      "appVersion: \"9.9\"\n")
    subprocess.run([str(real), "package", str(chart), "-d", str(tmp_path)], check=True,
                   capture_output=True)
    archive = tmp_path / "packaged-3.2.1.tgz"
    assert run(standins, "helm", "upgrade", "--install", "p", str(archive), "-n", "default",
               "-f", "-", stdin=b"{}")[0] == 0
    assert json.loads(run(standins, "helm", *HELM_LIST)[1])[0]["chart"] == "packaged-3.2.1"
    assert run(standins, "helm", "upgrade", "--install", "p", str(tmp_path / "nope.tgz"),
               "-f", "-") == (1, "", f'Error: path "{tmp_path / "nope.tgz"}" not found\n')


# Our real steps, converged through the stand-ins ------------------------------------------

SECRET = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
          "metadata": {"name": "grafana-admin", "namespace": "probe"},
          "stringData": {"password": CANARY}}
WEB = {"apiVersion": "apps/v1", "kind": "Deployment",
       "metadata": {"name": "web", "namespace": "probe"},
       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web",
                                                      "image": "nginx:1.27.3"}]}}}}
CERT_MANAGER = Release(name="cert-manager", namespace="cert-manager", repo_name="jetstack",
                       repo_url="https://charts.jetstack.io", chart="cert-manager",
                       version="v1.13.1", values_source="helm-values/cert-manager.yaml",
                       values={"installCRDs": True, "prometheus": {"enabled": True}})
CERT_MANAGER_DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "cert-manager"}, "spec": {"replicas": 1}}


def probe_step(tools: Tools, *docs: dict[str, Any]) -> ObjectsStep:
    return ObjectsStep("probe", "probe objects", tools,
                       [Document(f"manifests/probe/{d['kind'].lower()}.yaml", d)
                        for d in (docs or (NS, CM, SECRET, WEB))],
                       waits=(kube.rollout_status(tools, "deployment", "web", "probe", 60),))


def cert_manager_steps(standins: Standins, tools: Tools, tmp_path: Path) -> list[Step]:
    archive = chart_archive(tmp_path / "charts", "cert-manager", "v1.13.1",
                            app_version="v1.13.1")
    standins.configure(chart_objects={"cert-manager": [CERT_MANAGER_DEPLOYMENT]})
    return [
        HelmReleaseStep("cert-manager", "cert-manager: chart", tools, CERT_MANAGER,
                        archive=lambda r: archive, wait_seconds=300,
                        then=(kube.wait(tools, "deployment", "cert-manager", "cert-manager",
                                        "Available", 120),)),
        ObjectsStep("issuers", "cert-manager: ClusterIssuers", tools,
                    [Document("manifests/cert-manager/clusterissuers.yaml", ISSUER)],
                    waits=(kube.wait(tools, "clusterissuer", "letsencrypt-prod", None,
                                     "Ready", 120),),
                    must_be_ready=("ClusterIssuer/-/letsencrypt-prod",)),
    ]


def converge_on(standins: Standins, tools: Tools, steps: list[Step], *, check: bool = False
                ) -> tuple[bool, list[tuple[str, str, list[str]]], str]:
    out = io.StringIO()
    summary = Summary()
    ok = converge(standins.target(tools), steps,
                  check=check, reporter=Reporter(out), summary=summary)
    return ok, [(o.step_id, o.status.value, o.details) for o in summary.outcomes], \
        out.getvalue()


def calls_made(standins: Standins) -> list[str]:
    return [c.line for c in standins.calls()]


@pytest.fixture
def tools(standins: Standins) -> Tools:
    found = standins.tools()  # asks the stand-in helm its version
    standins.clear_calls()
    return found


def test_tools_find_finds_the_standins_and_helm_4(standins: Standins) -> None:
    assert standins.tools() == Tools(kubectl=str(standins.kubectl), helm=str(standins.helm),
                                     helm_major=4)
    standins.configure(helm_version="v3.17.2+gstandin")
    assert standins.tools().helm_major == 3


def test_every_fact_and_command_of_the_catalog_is_understood(standins: Standins,
                                                             tools: Tools) -> None:
    # the catalog of test_real_cli_argv.py: every command line the cluster steps build
    from tests.unit.cluster_catalog import all_steps, fact_argv, planned_commands

    env = {**os.environ, **standins.env(tools)}
    seen = 0
    for step in all_steps(tools):
        for fact in step.facts():
            argv, stdin = fact_argv(fact)
            subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
            seen += 1
        for command in planned_commands(step):
            subprocess.run(list(command.argv), input=command.stdin, env=env,
                           capture_output=True, check=False)
            seen += 1
    calls = standins.calls()
    assert len(calls) == seen
    assert [(c.line, c.rc, c.stderr) for c in calls if c.rc in (2, 70) and "stand-in" in
            c.stderr] == []


def test_objects_from_empty_to_converged_then_nothing_to_do(standins: Standins, tools: Tools
                                                            ) -> None:
    ok, outcomes, _ = converge_on(standins, tools, [probe_step(tools)])
    assert ok
    # the namespace is not there yet, so kubectl diff fails on the objects inside it: the
    # step applies everything (kubectl creates the namespace first)
    assert outcomes == [("probe", "changed", [
        'apply 4 objects (not there yet: Error from server (NotFound): namespaces "probe" not'
        ' found)'])]
    assert calls_made(standins) == [
        "kubectl diff --server-side --field-manager=k3s-vps-platform --force-conflicts -f -",
        "kubectl apply --server-side --field-manager=k3s-vps-platform --force-conflicts -f -",
        "kubectl rollout status deployment/web -n probe --timeout=60s",
        "kubectl diff --server-side --field-manager=k3s-vps-platform --force-conflicts -f -"]
    assert standins.calls()[1].stdout == (
        "namespace/probe serverside-applied\nconfigmap/settings serverside-applied\n"
        "secret/grafana-admin serverside-applied\ndeployment.apps/web serverside-applied\n")
    cm = standins.object("ConfigMap/probe/settings")
    assert cm is not None and cm["data"] == {"mode": "strict"}
    standins.clear_calls()
    ok, outcomes, _ = converge_on(standins, tools, [probe_step(tools)])
    assert (ok, outcomes) == (True, [("probe", "ok", [])])
    assert calls_made(standins) == [
        "kubectl diff --server-side --field-manager=k3s-vps-platform --force-conflicts"
        " -f -"]  # one read, no write
    assert standins.calls()[0].rc == 0


def test_objects_in_plan_mode_only_read(standins: Standins, tools: Tools) -> None:
    ok, outcomes, _ = converge_on(standins, tools, [probe_step(tools, NS)], check=True)
    assert (ok, outcomes) == (True, [("probe", "would change", ["create Namespace/-/probe"])])
    assert calls_made(standins) == [
        "kubectl diff --server-side --field-manager=k3s-vps-platform --force-conflicts -f -"]
    assert "Namespace/-/probe" not in standins.objects()


def test_a_drifted_object_is_applied_again(standins: Standins, tools: Tools) -> None:
    # changed behind our back, field ownership untouched (a change the API records under
    # another manager is a conflict: see the kubectl edit test below)
    converge_on(standins, tools, [probe_step(tools)])
    standins.edit("ConfigMap/probe/settings", {("data", "mode"): "lenient"}, manager=None)
    standins.clear_calls()
    ok, outcomes, _ = converge_on(standins, tools, [probe_step(tools)])
    assert (ok, outcomes) == (True, [("probe", "changed", ["update ConfigMap/probe/settings"])])
    assert standins.object("ConfigMap/probe/settings")["data"] == {  # type: ignore[index]
        "mode": "strict"}
    assert converge_on(standins, tools, [probe_step(tools)])[1] == [("probe", "ok", [])]


def test_a_field_taken_over_by_kubectl_edit_is_taken_back(standins: Standins,
                                                          tools: Tools) -> None:
    # After `kubectl edit` of a field we apply, the edit owns the field: the server-side
    # diff and apply force conflicts on our own objects (never on Flux's), so the drift
    # shows as a change and our value comes back.
    converge_on(standins, tools, [probe_step(tools)])
    standins.edit("ConfigMap/probe/settings", {("data", "mode"): "lenient"})
    standins.clear_calls()
    ok, outcomes, _ = converge_on(standins, tools, [probe_step(tools)])
    assert (ok, [(step, status) for step, status, _ in outcomes]) == (True, [("probe",
                                                                               "changed")])
    assert outcomes[0][2] == ["update ConfigMap/probe/settings"]
    assert standins.object("ConfigMap/probe/settings")["data"]["mode"] != "lenient"  # type: ignore[index]


def flux_manages_settings(standins: Standins, data: dict[str, str]) -> None:
    """Flux (kustomize-controller) applies the ConfigMap from its GitOps revision."""
    standins.install_crds("flux2")
    standins.apply({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "flux-system"}}, "kustomize-controller")
    standins.apply({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                    "metadata": {"name": "apps", "namespace": "flux-system"},
                    "spec": {"interval": "10m", "path": "./clusters/vps", "prune": True,
                             "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}},
                   "kustomize-controller")
    labels = {"kustomize.toolkit.fluxcd.io/name": "apps",
              "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    standins.apply({**NS, "metadata": {**NS["metadata"], "labels": {
        **NS["metadata"]["labels"], **labels}}}, "kustomize-controller")  # type: ignore[dict-item]
    standins.apply({**CM, "data": data, "metadata": {**CM["metadata"], "labels": labels}},
                   "kustomize-controller")


def assert_left_to_flux(standins: Standins, outcomes: list[tuple[str, str, list[str]]]) -> None:
    assert outcomes == [("probe", "changed", [
        "ask Flux to reconcile flux-system/apps (it manages objects that differ)"])]
    lines = calls_made(standins)
    assert lines[0] == ("kubectl diff --server-side --field-manager=k3s-vps-platform"
                        " --force-conflicts -f -")
    assert lines[1].startswith("kubectl annotate --overwrite -n flux-system"
                               " kustomization.kustomize.toolkit.fluxcd.io/apps"
                               " reconcile.fluxcd.io/requestedAt=")
    assert not [line for line in lines if line.startswith("kubectl apply")]
    ks = standins.object("Kustomization/flux-system/apps")
    assert ks is not None
    assert list(ks["metadata"]["annotations"]) == ["reconcile.fluxcd.io/requestedAt"]


def test_an_object_flux_manages_that_differs_from_ours_is_left_to_flux(
        standins: Standins, tools: Tools) -> None:
    # Flux applied the revision of the GitOps repository it has; ours (rendered from the
    # same files, newer) adds a key: a difference in a field nobody owns yet
    flux_manages_settings(standins, {"mode": "strict"})
    ours = {**CM, "data": {"mode": "strict", "level": "2"}}
    standins.clear_calls()
    ok, outcomes, _ = converge_on(standins, tools, [probe_step(tools, NS, ours)])
    assert ok
    assert_left_to_flux(standins, outcomes)
    assert standins.object("ConfigMap/probe/settings")["data"] == {  # type: ignore[index]
        "mode": "strict"}  # not applied over Flux


def test_an_unreachable_api_is_an_error_never_not_installed(standins: Standins, tools: Tools,
                                                            tmp_path: Path) -> None:
    standins.inject(unreachable=True)
    ok, outcomes, _ = converge_on(standins, tools, [probe_step(tools)])
    assert (ok, outcomes) == (False, [("probe", "failed", [
        'reading probe objects: the Kubernetes API is unreachable (error: unable to recognize'
        ' "STDIN": Get "https://127.0.0.1:6443/api?timeout=32s": dial tcp 127.0.0.1:6443:'
        " connect: connection refused): is K3s running on the first server, and the SSH"
        " tunnel up?"])])
    ok, outcomes, _ = converge_on(standins, tools, cert_manager_steps(standins, tools,
                                                                      tmp_path))
    assert (ok, outcomes) == (False, [
        ("cert-manager", "failed", [
            'listing Helm releases: the Kubernetes API is unreachable (Error: kubernetes'
            ' cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp'
            " 127.0.0.1:6443: connect: connection refused): is K3s running on the first"
            " server, and the SSH tunnel up?"]),
        ("issuers", "skipped", [])])
    assert not [c for c in calls_made(standins)
                if c.startswith(("kubectl apply", "helm upgrade"))]
    assert standins.releases() == {}


def test_a_chart_then_the_objects_its_crds_serve(standins: Standins, tools: Tools,
                                                 tmp_path: Path) -> None:
    steps = cert_manager_steps(standins, tools, tmp_path)
    # plan mode on an empty cluster: the ClusterIssuer's kind is not served yet
    ok, outcomes, _ = converge_on(standins, tools, steps, check=True)
    assert (ok, outcomes) == (True, [
        ("cert-manager", "would change",
         ["install cert-manager/cert-manager: not installed (chart cert-manager v1.13.1)"]),
        ("issuers", "would change", ["apply 1 objects (not there yet: ensure CRDs are"
                                     " installed first)"])])
    standins.clear_calls()
    ok, outcomes, _ = converge_on(standins, tools, steps)
    assert (ok, outcomes) == (True, [
        ("cert-manager", "changed",
         ["install cert-manager/cert-manager: not installed (chart cert-manager v1.13.1)"]),
        ("issuers", "changed", ["create ClusterIssuer/-/letsencrypt-prod"])])
    upgrade = next(c for c in standins.calls() if c.args[:1] == ("upgrade",))
    assert upgrade.args == ("upgrade", "--install", "cert-manager",
                            str(tmp_path / "charts" / "cert-manager-v1.13.1.tgz"), "-n",
                            "cert-manager", "--create-namespace", "-f", "-", "--wait",
                            "--timeout=300s", "--rollback-on-failure")
    assert yaml.safe_load(upgrade.stdin) == CERT_MANAGER.values
    release = standins.releases()["cert-manager/cert-manager"]
    assert (release.current.revision, release.current.status, release.current.chart,
            release.current.version) == (1, "deployed", "cert-manager", "v1.13.1")
    issuer = standins.object("ClusterIssuer/-/letsencrypt-prod")
    assert issuer is not None and issuer["status"]["conditions"][0]["status"] == "True"
    standins.clear_calls()
    ok, outcomes, _ = converge_on(standins, tools, steps)
    assert (ok, outcomes) == (True, [("cert-manager", "ok", []), ("issuers", "ok", [])])
    # a converged component: one helm list, one helm get values, one kubectl diff
    assert sorted(calls_made(standins)) == [
        "helm get values cert-manager -n cert-manager -o json",
        "helm list -A --deployed --failed --pending -o json",
        "kubectl diff --server-side --field-manager=k3s-vps-platform --force-conflicts -f -"]


def test_values_changed_upgrade_and_a_version_bump(standins: Standins, tools: Tools,
                                                   tmp_path: Path) -> None:
    steps = cert_manager_steps(standins, tools, tmp_path)
    converge_on(standins, tools, steps)
    changed = Release(**{**CERT_MANAGER.__dict__, "values": {"installCRDs": True,
                                                             "prometheus": {"enabled": False}}})
    archive = tmp_path / "charts" / "cert-manager-v1.13.1.tgz"
    step = HelmReleaseStep("cert-manager", "cert-manager: chart", tools, changed,
                           archive=lambda r: archive)
    assert converge_on(standins, tools, [step])[1] == [("cert-manager", "changed", [
        "upgrade cert-manager/cert-manager: values differ from helm-values/cert-manager.yaml"
        " (prometheus.enabled)"])]
    bumped = Release(**{**changed.__dict__, "version": "v1.14.0"})
    newer = chart_archive(tmp_path / "charts", "cert-manager", "v1.14.0", app_version="v1.14.0")
    step = HelmReleaseStep("cert-manager", "cert-manager: chart", tools, bumped,
                           archive=lambda r: newer)
    assert converge_on(standins, tools, [step])[1] == [("cert-manager", "changed", [
        "upgrade cert-manager/cert-manager: chart is cert-manager-v1.13.1, want"
        " cert-manager-v1.14.0"])]
    assert [(r.revision, r.status, r.version) for r in
            standins.releases()["cert-manager/cert-manager"].revisions] == [
        (1, "superseded", "v1.13.1"), (2, "superseded", "v1.13.1"), (3, "deployed", "v1.14.0")]


def test_a_run_failing_half_way_finishes_on_the_next_run(standins: Standins, tools: Tools,
                                                         tmp_path: Path) -> None:
    steps = cert_manager_steps(standins, tools, tmp_path)
    standins.inject(helm_fail={"cert-manager/cert-manager": ("context deadline exceeded", 1)})
    ok, outcomes, _ = converge_on(standins, tools, steps)
    assert (ok, outcomes) == (False, [
        ("cert-manager", "failed", [
            "cert-manager: chart: install cert-manager/cert-manager: not installed (chart"
            " cert-manager v1.13.1): exit 1: Error: release cert-manager failed, and"
            " has been uninstalled due to rollback-on-failure being set: context deadline"
            " exceeded"]),
        ("issuers", "skipped", [])])
    assert standins.releases() == {}
    ok, outcomes, _ = converge_on(standins, tools, steps)
    assert (ok, [s for _, s, _ in outcomes]) == (True, ["changed", "changed"])
    assert converge_on(standins, tools, steps)[1] == [("cert-manager", "ok", []),
                                                      ("issuers", "ok", [])]


def test_an_object_that_never_becomes_ready(standins: Standins, tools: Tools,
                                            tmp_path: Path) -> None:
    steps = cert_manager_steps(standins, tools, tmp_path)
    standins.inject(not_ready={"ClusterIssuer/-/letsencrypt-prod":
                               "Failed to register ACME account: 429 urn:ietf:params:acme:"
                               "error:rateLimited"})
    ok, outcomes, _ = converge_on(standins, tools, steps)
    assert not ok
    assert outcomes[1] == ("issuers", "failed", [
        "cert-manager: ClusterIssuers: create ClusterIssuer/-/letsencrypt-prod: exit 1: error:"
        " timed out waiting for the condition on clusterissuers/letsencrypt-prod"])
    # the next run: applied already, still not Ready: it waits again, and says why
    ok, outcomes, _ = converge_on(standins, tools, steps)
    assert outcomes[1] == ("issuers", "failed", [
        "cert-manager: ClusterIssuers: wait for ClusterIssuer/-/letsencrypt-prod: exit 1:"
        " error: timed out waiting for the condition on clusterissuers/letsencrypt-prod"])


def test_a_canary_secret_travels_on_stdin_only(standins: Standins, tools: Tools,
                                               tmp_path: Path) -> None:
    grafana = Release(name="grafana", namespace="monitoring", repo_name="grafana",
                      repo_url="https://grafana.github.io/helm-charts", chart="grafana",
                      version="8.0.0", values_source="helm-values/grafana.yaml",
                      values={"adminPassword": CANARY})
    archive = chart_archive(tmp_path / "charts", "grafana", "8.0.0")
    steps: list[Step] = [
        probe_step(tools),
        HelmReleaseStep("grafana", "grafana: chart", tools, grafana, archive=lambda r: archive),
    ]
    reports = [converge_on(standins, tools, steps) for _ in range(2)]
    standins.edit("Secret/probe/grafana-admin", {("data", "password"): "ZHJpZnQ="},
                  manager=None)
    reports.append(converge_on(standins, tools, steps))
    assert [[s for _, s, _ in outcomes] for _, outcomes, _ in reports] == [
        ["changed", "changed"], ["ok", "ok"], ["changed", "ok"]]
    secrets = (CANARY, base64.b64encode(CANARY.encode()).decode())
    calls = standins.calls()
    assert any(CANARY.encode() in c.stdin for c in calls)  # it did travel, on stdin
    for call in calls:
        for secret in secrets:
            assert secret not in " ".join(call.argv), call.line
            assert not [k for k, v in call.env.items() if secret in v], call.line
            if call.binary == "kubectl":  # kubectl diff masks Secret data
                assert secret not in call.stdout + call.stderr, call.line
    for _, outcomes, printed in reports:
        assert not [s for s in secrets if s in printed or s in repr(outcomes)]


# Bugs found in tasks/ with the stand-ins (these fail until they are fixed) ---------------

def test_the_diff_program_tools_env_names_survives_kubectl(standins: Standins, tools: Tools
                                                           ) -> None:
    # BUG (tasks/cluster/kube.py Tools.env): KUBECTL_EXTERNAL_DIFF is "<python>
    # <repo>/tasks/cluster/kdiff.py". kubectl 1.33 splits it on spaces and keeps only the
    # words matching ^[a-zA-Z0-9-=]+$ after the program (diff.go getCommand; the regex is
    # in the real kubectl-v33 binary, and test_real_kubectl_diff.py shows the real kubectl
    # doing it): the script's path is dropped, python is run on the LIVE folder ("can't
    # find '__main__' module"), and every ObjectsStep fails reading its objects. One
    # executable path (kdiff.py with a shebang, or a wrapper script) would survive.
    words = tools.env(standins.kubeconfig)["KUBECTL_EXTERNAL_DIFF"].split(" ")
    step = ObjectsStep("probe", "probe objects", tools, [Document("manifests/probe/ns.yaml",
                                                                  NS)])
    ok, outcomes, _ = converge_on(standins, tools, [step])
    assert (ok, outcomes) == (True, [("probe", "changed", ["create Namespace/-/probe"])]), \
        (words, outcomes)


@pytest.mark.parametrize("binary", ["kubectl", "helm"])
def test_credentials_refused_are_named_unauthorized(standins: Standins, tools: Tools,
                                                    tmp_path: Path, binary: str) -> None:
    # BUG (tasks/cluster/kube.py api_error): kubectl 1.33 and helm 3/4 say "the server has
    # asked for the client to provide credentials" for a 401 (the real binaries, and
    # infrahq/infra#1181, kubernetes/minikube#8945); api_error looks for "unauthorized" or
    # "you must be logged in" only, so the operator gets the raw line instead of "the API
    # refused our credentials (Unauthorized): ... Re-run inv k3s.install".
    standins.inject(unauthorized=True)
    steps = [probe_step(tools)] if binary == "kubectl" else \
        cert_manager_steps(standins, tools, tmp_path)[:1]
    ok, outcomes, _ = converge_on(standins, tools, steps)
    what = "reading probe objects" if binary == "kubectl" else "listing Helm releases"
    assert (ok, outcomes[0]) == (False, (steps[0].id, "failed", [
        f"{what}: the API refused our credentials (Unauthorized): is the kubeconfig from"
        " this cluster? Re-run inv k3s.install to fetch it again"]))


def test_a_helm_wait_failure_names_the_resource_that_is_not_ready(
        standins: Standins, tools: Tools, tmp_path: Path) -> None:
    # BUG (tasks/engine/errors.py CommandFailed keeps the last stderr line only): helm 4
    # reports a failed wait on two lines ("... resource Deployment/ns/name not ready.
    # status: InProgress, message: Available: 0/1" then "context deadline exceeded"), so
    # the operator reads "context deadline exceeded" and not what never became ready. The
    # same cut turns kubectl's apply conflict into its last line, "See https://kubernetes.io
    # /docs/reference/using-api/server-side-apply/#conflicts".
    steps = cert_manager_steps(standins, tools, tmp_path)[:1]
    standins.inject(not_ready={"Deployment/cert-manager/cert-manager": "image pull back-off"})
    ok, outcomes, _ = converge_on(standins, tools, steps)
    assert not ok
    assert "resource Deployment/cert-manager/cert-manager not ready" in outcomes[0][2][0], \
        outcomes


def test_a_drifted_object_flux_manages_is_left_to_flux(standins: Standins, tools: Tools
                                                       ) -> None:
    # BUG (tasks/cluster/kube.py diff_fact): someone edits an object Flux manages. On a
    # real API server the edit takes the field over (from Flux and from us), so our
    # non-forced server-side dry-run apply conflicts: `kubectl diff` fails (exit 2) before
    # kdiff sees the object and its Flux labels, and the step fails on a conflict instead
    # of asking Flux to reconcile, as steps.py promises ("not fought over"). A diff with
    # --force-conflicts (a dry run: it changes nothing) would show the difference.
    converge_on(standins, tools, [probe_step(tools, NS, CM)])
    flux_manages_settings(standins, {"mode": "strict"})
    standins.edit("ConfigMap/probe/settings", {("data", "mode"): "lenient"})
    standins.clear_calls()
    ok, outcomes, _ = converge_on(standins, tools, [probe_step(tools, NS, CM)])
    assert ok, outcomes
    assert_left_to_flux(standins, outcomes)
