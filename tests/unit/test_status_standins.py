"""inv status through the STAND-IN kubectl and helm (tests/standins/): an empty K3s, then
after ingress.certs and flux.bootstrap converged. Status runs only reads (the call log
has no apply, upgrade, annotate, wait or create), and says what is missing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tasks.cluster.access import ClusterTarget
from tasks.status import findings
from tasks.status.run import cluster_findings
from tests.standins.harness import Standins
from tests.unit.cluster_catalog import session
from tests.unit.test_platform_standins import layer_steps, run

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
DATA = Path(__file__).parent / "fixtures" / "status" / "cluster"
#: What status may run: kubectl's reads and its server-side dry run (diff), helm's reads.
READS = {"kubectl": {"get", "diff"}, "helm": {"list", "get", "version"}}


def status(standins: Standins) -> list[str]:
    tools = standins.tools()
    target = ClusterTarget(name="cluster standin", tools=tools, kubeconfig=standins.kubeconfig,
                           env=tools.env(standins.kubeconfig))
    found = cluster_findings(session(), target, NOW)
    # spaces squeezed: the name column's width depends on every name on the screen
    return [" ".join(line.split()) for line in findings.lines(found)] + [
        f"exit {findings.exit_code(found)}"]


def only_reads(standins: Standins) -> None:
    calls = standins.calls()
    assert calls
    for call in calls:
        assert call.args[0] in READS[call.binary], call.line
        assert call.args[:2] != ("get", "--raw") or "/proxy/stats/summary" in call.args[2]
        assert "--dry-run" not in " ".join(call.args)


def test_an_empty_cluster_is_unhealthy_and_says_what_is_missing(standins: Standins) -> None:
    out = status(standins)
    only_reads(standins)
    assert out[:3] == ["nodes", "FAIL nodes the API lists no node", "fix: inv k3s.install"]
    for line in ["FAIL cert-manager/cert-manager not installed (want cert-manager-v1.13.1)",
                 "FAIL workloads no Deployment or StatefulSet at all",
                 "FAIL cert-manager no Certificate kind: cert-manager is not installed",
                 "FAIL flux no Kustomization kind: Flux is not installed",
                 "FAIL strimzi no Kafka kind: Strimzi is not installed",
                 "FAIL Namespace/-/cert-manager missing from the cluster",
                 "FAIL cert-manager-issuers not applied: ensure CRDs are installed first",
                 "FAIL flux-sync not applied: ensure CRDs are installed first"]:
        assert line in out, "\n".join(out)
    assert [line for line in out if line.startswith("FAIL kafka.deploy")] == [
        "FAIL kafka.deploy 6 differ: Namespace/-/kafka (missing from the cluster),"], out
    assert out[-1] == "exit 1"


def test_after_ingress_and_flux_converged(standins: Standins, tmp_path: Path) -> None:
    tools = standins.tools()
    ok, _, text = run(standins, tools, layer_steps(standins, tools, tmp_path / "charts"))
    assert ok, text
    node = json.loads((DATA / "nodes.json").read_text())["items"][0]
    standins.record(node)
    # a claim in use (the kubelet reports its volume through the node proxy)
    standins.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kafka"}},
                   "test")
    standins.record(json.loads((DATA / "pvcs.json").read_text())["items"][0])
    standins.configure(node_proxy={"vps1": {"/stats/summary": (
        DATA / "summary-vps1.json").read_text()}})
    standins.clear_calls()
    out = status(standins)
    only_reads(standins)
    assert [c.line for c in standins.calls() if "--raw" in c.args] == [
        "kubectl get --raw /api/v1/nodes/vps1/proxy/stats/summary"]
    want = [
        "ok vps1 Ready, kubelet v1.33.3+k3s1",
        "ok cert-manager/cert-manager deployed cert-manager-v1.13.1, revision 1",
        "ok flux-system/flux2 deployed flux2-2.16.4, revision 1",
        "ok kube-system all available: 1 Deployment",  # K3s's Traefik
        # the stand-in's Flux objects are Ready but report no revision
        "ok GitRepository flux-system/flux-system Ready, revision unknown",
        "ok Kustomization flux-system/flux-system Ready, applied unknown",
        "ok kafka/data-0-my-cluster-dual-role-0 Bound 10Gi, 1.2GiB of 10.0GiB used (12%)",
        "FAIL kafka/strimzi not installed (want strimzi-kafka-operator-0.47.0)",
        "FAIL certificates no Certificate at all (the apps' Ingress makes one)"]
    for line in want:
        assert line in out, "\n".join(out)
    drift = out[out.index("drift") + 1:]
    assert not [line for line in drift if "ingress.certs" in line or "flux" in line], drift
    assert out[-1] == "exit 1"
