"""inv status on the cluster: recorded kubectl/helm outputs in, the lines out.

fixtures/status/cluster/ holds a converged platform as the tools print it (SOURCES.md
there); each unhealthy case changes those outputs the way the cluster reports that
failure, and pins the lines the operator reads. The drift facts are the layers' own
(``kubectl diff`` of each component, each release's values).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.cluster.kube import Tools
from tasks.engine.facts import Raw
from tasks.status import drift, findings
from tasks.status.run import cluster_findings
from tests.unit.cluster_catalog import ToolsTarget, session
from tests.unit.status_replay import Replay

DATA = Path(__file__).parent / "fixtures" / "status" / "cluster"
NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
FILES = {"status:nodes": "nodes.json", "helm-list": "helm-list.json",
         "status:workloads": "workloads.json", "status:pvcs": "pvcs.json",
         "status:certificates": "certificates.json", "status:flux": "flux.json",
         "status:kafka": "kafka.json", "status:summary:vps1": "summary-vps1.json"}
TOOLS = Tools("/k", "/h")

HEALTHY = [
    "nodes",
    "  ok    vps1                                   Ready, kubelet v1.33.3+k3s1",
    "releases",
    "  ok    cert-manager/cert-manager              deployed cert-manager-v1.13.1, revision 1",
    "  ok    monitoring/kube-prometheus-stack       deployed kube-prometheus-stack-85.4.0,"
    " revision 2",
    "  ok    kafka/strimzi                          deployed strimzi-kafka-operator-0.47.0,"
    " revision 1",
    "  ok    flux-system/flux2                      deployed flux2-2.16.4, revision 1",
    "  ok    app/apps                               deployed apps-0.1.0, revision 3",
    "workloads",
    "  ok    app                                    all available: 3 Deployments",
    "  ok    cert-manager                           all available: 3 Deployments",
    "  ok    flux-system                            all available: 4 Deployments",
    "  ok    kafka                                  all available: 2 Deployments",
    "  ok    kube-system                            all available: 4 Deployments",
    "  ok    monitoring                             all available: 3 Deployments, 2"
    " StatefulSets",
    "certificates",
    "  ok    app/api-gateway-tls                    Ready, expires 2026-04-02 07:15 UTC (in 86"
    " days)",
    "flux",
    "  ok    GitRepository flux-system/flux-system  Ready, revision main@sha1:4f2a9c1e",
    "  ok    Kustomization flux-system/flux-system  Ready, applied main@sha1:4f2a9c1e",
    "kafka",
    "  ok    Kafka kafka/my-cluster                 Ready",
    "  ok    topics                                 6 of 6 KafkaTopics Ready",
    "volumes",
    "  ok    kafka/data-0-my-cluster-dual-role-0    Bound 10Gi, 1.2GiB of 10.0GiB used (12%)",
    "  ok    monitoring/kube-p...heus-stack-grafana Bound 5Gi, 50.0MiB of 5.0GiB used (1%)",
    "  ok    monitoring/promet...stack-prometheus-0 Bound 10Gi, 2.0GiB of 10.0GiB used (20%)",
    "drift",
    "  ok    cluster                                27 objects, 5 releases' values as in the"
    " repository",
    "healthy: 21 checks",
]
FIX = " " * 8 + "fix: "
MORE = " " * 47  # a detail's next line


def recorded() -> dict[str, Any]:
    out: dict[str, Any] = {key: json.loads((DATA / name).read_text())
                           for key, name in FILES.items()}
    return out


def raws(data: dict[str, Any], extra: dict[str, Raw] | None = None) -> dict[str, Raw]:
    """The recordings (as the tools print them), and the drift facts of a converged
    cluster: every ``kubectl diff`` empty (exit 0), every release's values ours."""
    out = {key: Raw(json.dumps(value, indent=4), 0) for key, value in data.items()}
    steps = drift.layer_steps(session(), ToolsTarget(TOOLS))  # type: ignore[arg-type]
    for fact in drift.facts_of(steps):
        if fact.key.startswith("kubectl-diff:"):
            out[fact.key] = Raw("", 0)
    for _, release in drift.releases(steps):
        out[f"helm-values:{release.namespace}/{release.name}"] = Raw(
            json.dumps(release.values), 0)
    return {**out, **(extra or {})}


def screen(data: dict[str, Any], extra: dict[str, Raw] | None = None) -> list[str]:
    target = Replay(TOOLS, raws(data, extra))
    found = cluster_findings(session(), target, NOW)  # type: ignore[arg-type]
    return [*findings.lines(found), f"exit {findings.exit_code(found)}"]


def test_a_converged_cluster_is_healthy() -> None:
    assert screen(recorded()) == [*HEALTHY, "exit 0"]


# Each case: how the cluster reports the failure, in the recorded outputs.
Change = Callable[[dict[str, Any]], None]


def item(data: dict[str, Any], key: str, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in data[key]["items"]
                                 if i["kind"] == kind and i["metadata"]["name"] == name)
    return found


def node_not_ready(d: dict[str, Any]) -> None:
    ready = d["status:nodes"]["items"][0]["status"]["conditions"][3]
    ready.update(status="Unknown", reason="NodeStatusUnknown",
                 message="Kubelet stopped posting node status.")


def old_kubelet(d: dict[str, Any]) -> None:
    d["status:nodes"]["items"][0]["status"]["nodeInfo"]["kubeletVersion"] = "v1.32.6+k3s1"


def release(d: dict[str, Any], name: str, **values: str) -> None:
    next(r for r in d["helm-list"] if r["name"] == name).update(values)


def deployment_unavailable(d: dict[str, Any]) -> None:
    gateway = item(d, "status:workloads", "Deployment", "api-gateway")
    gateway["status"].update(availableReplicas=0, readyReplicas=0, unavailableReplicas=1)
    gateway["status"]["conditions"][0].update(
        status="False", reason="MinimumReplicasUnavailable",
        message="Deployment does not have minimum availability.")


def certificate(d: dict[str, Any], not_after: str | None, ready: str, reason: str,
                message: str) -> None:
    status = d["status:certificates"]["items"][0]["status"]
    status["conditions"][0].update(status=ready, reason=reason, message=message)
    if not_after is None:
        del status["notAfter"]
    else:
        status["notAfter"] = not_after


def kustomization_failing(d: dict[str, Any]) -> None:
    k = item(d, "status:flux", "Kustomization", "flux-system")
    k["status"]["conditions"][0].update(
        status="False", reason="BuildFailed", message="kustomize build failed: accumulating"
        " resources: accumulation err='accumulating resources from 'apps': no such file'")


def kafka_not_ready(d: dict[str, Any]) -> None:
    k = item(d, "status:kafka", "Kafka", "my-cluster")
    k["status"]["conditions"] = [{
        "lastTransitionTime": "2026-01-05T08:40:11.021554211Z", "status": "True",
        "type": "NotReady", "reason": "TimeoutException",
        "message": "Exceeded timeout of 300000ms while waiting for Pods resource"
                   " my-cluster-dual-role-0 in namespace kafka to be ready"}]


def topic_not_ready(d: dict[str, Any]) -> None:
    t = item(d, "status:kafka", "KafkaTopic", "travel-proposal.completed")
    t["status"]["conditions"][0].update(
        status="False", reason="KafkaError", message="org.apache.kafka.common.errors."
        "InvalidReplicationFactorException: Unable to replicate the partition 3 time(s)")


def claim_pending(d: dict[str, Any]) -> None:
    item(d, "status:pvcs", "PersistentVolumeClaim", "kube-prometheus-stack-grafana")[
        "status"] = {"phase": "Pending"}
    d["status:summary:vps1"]["pods"].pop(1)  # no pod runs with it


def volume_full(d: dict[str, Any]) -> None:
    volume = d["status:summary:vps1"]["pods"][0]["volume"][0]
    volume.update(usedBytes=9663676416, availableBytes=1073741824)


CASES: list[Any] = [
    pytest.param(node_not_ready, [
        '  FAIL  vps1                                   not Ready (NodeStatusUnknown: Kubelet'
        ' stopped posting',
        MORE + 'node status.)',
        FIX + 'journalctl -u k3s on vps1; inv k3s.install',
    ], id="node-not-ready"),
    pytest.param(old_kubelet, [
        '  FAIL  vps1                                   Ready, kubelet v1.32.6+k3s1, want'
        ' v1.33.3+k3s1',
        MORE + '(versions.k3s)',
        FIX + 'inv k3s.install',
    ], id="kubelet-version"),
    pytest.param(lambda d: release(d, "apps", status="failed", revision="4"), [
        '  FAIL  app/apps                               failed (revision 4, apps-0.1.0)',
        FIX + 'inv apps.deploy (helm history apps -n app says why)',
    ], id="release-failed"),
    pytest.param(lambda d: release(d, "cert-manager", chart="cert-manager-v1.12.0"), [
        '  FAIL  cert-manager/cert-manager              deployed cert-manager-v1.12.0, want',
        MORE + 'cert-manager-v1.13.1',
        FIX + 'inv ingress.certs',
    ], id="release-wrong-version"),
    pytest.param(lambda d: d["helm-list"].pop(3), [
        '  FAIL  kafka/strimzi                          not installed (want'
        ' strimzi-kafka-operator-0.47.0)',
        FIX + 'inv kafka.deploy',
    ], id="release-missing"),
    pytest.param(deployment_unavailable, [
        '  FAIL  Deployment app/api-gateway             0/1 available: Deployment does not have'
        ' minimum',
        MORE + 'availability.',
        FIX + 'kubectl -n app describe deployment api-gateway',
    ],
        id="deployment-unavailable"),
    pytest.param(lambda d: certificate(d, "2026-01-01T07:15:30Z", "False", "Expired",
                                       "Certificate expired on Thu, 01 Jan 2026 07:15:30 UTC"), [
        '  FAIL  app/api-gateway-tls                    expired 2026-01-01 07:15 UTC',
        FIX + 'kubectl -n app describe certificate api-gateway-tls',
    ], id="certificate-expired"),
    pytest.param(lambda d: certificate(d, None, "False", "DoesNotExist",
                                       "Issuing certificate as Secret does not exist"), [
        '  FAIL  app/api-gateway-tls                    not Ready: Issuing certificate as'
        ' Secret does not',
        MORE + 'exist',
        FIX + 'inv apps.deploy says why; kubectl -n app describe certificate api-gateway-tls',
    ],
        id="certificate-not-ready"),
    pytest.param(kustomization_failing, [
        '  FAIL  Kustomization flux-system/flux-system  not Ready (BuildFailed: kustomize build'
        ' failed:',
        MORE + 'accumulating resources: accumulation',
        MORE + "err='accumulating resources from 'apps': no such f...",
        FIX + 'kubectl -n flux-system describe kustomization flux-system',
    ],
        id="kustomization-not-ready"),
    pytest.param(kafka_not_ready, [
        '  FAIL  Kafka kafka/my-cluster                 not Ready (TimeoutException: Exceeded'
        ' timeout of',
        MORE + '300000ms while waiting for Pods resource',
        MORE + 'my-cluster-dual-role-0 in namespace kafka to be re...',
        FIX + 'kubectl -n kafka describe kafka my-cluster',
    ],
        id="kafka-not-ready"),
    pytest.param(topic_not_ready, [
        '  FAIL  KafkaTopic travel-proposal.completed   not Ready (KafkaError:'
        ' org.apache.kafka.common.errors',
        MORE + '.InvalidReplicationFactorException: Unable to',
        MORE + 'replicate the partition 3 time(s))',
        FIX + 'kubectl -n kafka describe kafkatopic travel-proposal.completed',
    ],
        id="topic-not-ready"),
    pytest.param(claim_pending, [
        '  FAIL  monitoring/kube-p...heus-stack-grafana Pending, not Bound',
        FIX + 'kubectl -n monitoring describe pvc kube-prometheus-stack-grafana',
    ],
        id="pvc-pending"),
]


@pytest.mark.parametrize(("change", "lines"), CASES)
def test_unhealthy_cluster(change: Change, lines: list[str]) -> None:
    data = recorded()
    change(data)
    out = screen(data)
    assert out[-1] == "exit 1"
    assert [line for line in out if line.startswith(("  FAIL", "  WARN", "  ??", MORE))
            or "fix:" in line] == lines


@pytest.mark.parametrize(("change", "lines"), [
    pytest.param(lambda d: certificate(d, "2026-01-12T07:15:30Z", "True", "Ready",
                                       "Certificate is up to date and has not expired"), [
        "  WARN  app/api-gateway-tls                    Ready, expires 2026-01-12 07:15 UTC (in"
        " 6 days): not", MORE + "renewed",
        FIX + "kubectl -n app describe certificate api-gateway-tls"],
        id="certificate-expiring"),
    pytest.param(volume_full, [
        "  WARN  kafka/data-0-my-cluster-dual-role-0    Bound 10Gi, 9.0GiB of 10.0GiB used (90%)",
        FIX + "grow the claim or free space (over 85%)"], id="volume-90-percent"),
])
def test_warnings_are_shown_and_do_not_fail(change: Change, lines: list[str]) -> None:
    data = recorded()
    change(data)
    out = screen(data)
    assert out[-2:] == ["healthy: 21 checks, 1 warning", "exit 0"]
    assert [line for line in out if line.startswith(("  WARN", MORE))
            or "fix:" in line] == lines


TOPIC_DIFF = json.dumps({
    "diff": "--- live\n+++ ours\n@@ -8,7 +8,7 @@\n   name: travel-generation.progress\n"
            "   namespace: kafka\n spec:\n-  partitions: 6\n+  partitions: 3\n"
            "   replicas: 1\n", "key": "KafkaTopic/kafka/travel-generation.progress",
    "ready": "True", "message": "", "state": "changed"}, sort_keys=True) + "\n"


def test_drift_names_what_differs_from_the_repository() -> None:
    apps = next(r for _, r in drift.releases(drift.layer_steps(
        session(), ToolsTarget(TOOLS))) if r.name == "apps")  # type: ignore[arg-type]
    edited = copy.deepcopy(apps.values)
    edited["apps"]["api-gateway"]["replicas"] = 3
    out = screen(recorded(), {"kubectl-diff:kafka-topics": Raw(TOPIC_DIFF, 1),
                              "helm-values:app/apps": Raw(json.dumps(edited), 0)})
    assert out[out.index("drift") + 1:] == [
        "  FAIL  KafkaTopic/kafka/...eneration.progress changed in the cluster: live partitions:"
        " 6, ours", MORE + "partitions: 3", FIX + "inv kafka.deploy",
        "  FAIL  release app/apps                       values differ from"
        " helm-values/apps.yaml", MORE + "(apps.api-gateway.replicas)", FIX + "inv apps.deploy",
        "unhealthy: 2 of 22 checks: KafkaTopic/kafka/travel-generation.progress (drift),"
        " release app/apps ...",
        "exit 1"]


def test_an_unreachable_api_is_one_line() -> None:
    refused = Raw("", 1, "The connection to the server 127.0.0.1:39321 was refused - did you"
                         " specify the right host or port?\n")
    out = screen(recorded(), {key: refused for key in raws(recorded())})
    assert out == [
        "cluster",
        "  FAIL  API reading the nodes: the Kubernetes API is unreachable (The connection to the"
        " server",
        "            127.0.0.1:39321 was refused - did you specify the right host or port?): is"
        " K3s running",
        "            on the first server, and the SSH tunnel up?",
        "        fix: inv k3s.install checks K3s and the kubeconfig",
        "unhealthy: 1 of 1 checks: API (cluster)", "exit 1"]
