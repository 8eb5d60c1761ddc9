"""apps.diagnose end to end through the STAND-IN kubectl (tests/standins/): the task as
`inv apps.diagnose` runs it, from the inventory to the exit code, on the recorded pods,
events, Secrets and previous logs of tests/unit/fixtures/diagnose/. Only the SSH tunnel
is replaced: the cluster target is this machine with the stand-in kubectl.

The original server's story: both microservices in CrashLoopBackOff, the gateway fine.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from tasks.apps import collection
from tasks.cli import Session
from tasks.cluster import access
from tasks.cluster.access import ClusterTarget
from tests.standins.harness import Standins
from tests.unit.diagnose_cases import load, log_outputs
from tests.unit.inventory_text import BASE, inventory

SECRET_VALUES = [base64.b64decode(v).decode() for item in load("crashloop-exit-1", "refs.json")
                 ["items"] if item["kind"] == "Secret" for v in item["data"].values()]


@pytest.fixture
def cluster(standins: Standins, monkeypatch: pytest.MonkeyPatch) -> Standins:
    tools = standins.tools()

    @contextmanager
    def standin_cluster(session: Session) -> Iterator[ClusterTarget]:
        yield ClusterTarget(name="cluster standin", tools=tools,
                            kubeconfig=standins.kubeconfig, env=standins.env(tools))

    monkeypatch.setattr(access, "cluster", standin_cluster)
    standins.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
                   "stack")
    return standins


def seed(standins: Standins, cases: list[str], *, healthy: list[str]) -> None:
    """The cases' pods, events and previous logs, the healthy case's pods of the apps in
    ``healthy``, and the Secrets and ConfigMaps of the first case."""
    items: list[dict[str, Any]] = [p for p in load("healthy", "pods.json")["items"]
                                   if p["metadata"]["labels"]["app.kubernetes.io/name"]
                                   in healthy]
    for case in cases:
        items += load(case, "pods.json")["items"] + load(case, "events.json")["items"]
    items += load(cases[0], "refs.json")["items"] if cases else []
    for obj in items:
        standins.record(obj)
    for case in cases:
        for pod in load(case, "pods.json")["items"]:
            for container, text in log_outputs(case).items():
                standins.set_log("app", pod["metadata"]["name"], container, text)


def diagnose(tmp_path: Path, **options: Any) -> int:
    try:
        collection.diagnose(Context(), inventory=str(inventory(tmp_path, BASE)), **options)
    except Exit as exc:
        return int(exc.code)
    return 0


def test_both_microservices_crash_looping(cluster: Standins, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    seed(cluster, ["crashloop-exit-1", "oomkilled"], healthy=["api-gateway"])
    assert diagnose(tmp_path) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    assert [line for line in lines if not line.startswith(" ")] == [
        "app/api-enrichment-5f7b9c8d6-m4t7w (api-enrichment): it runs out of memory: it"
        " reached its memory limit of 384Mi and was killed (OOMKilled, exit code 137): raise"
        " resources.limits.memory of api-enrichment in helm-values/apps.yaml, or find what"
        " uses the memory", "",
        "app/api-generation-6d9c7b5f4-q8x2m (api-generation): the application exits with an"
        " error (exit code 1): [cause]: KafkaJSConnectionError: Connection error: getaddrinfo"
        " ENOTFOUND my-cluster-kafka-bootstrap.kafka.svc", "",
        "needs attention: api-enrichment-5f7b9c8d6-m4t7w, api-generation-6d9c7b5f4-q8x2m"
        " (4 pods of ours in namespace app examined)"]
    assert "    | [Nest] 1  - 01/05/2026, 9:30:26 AM     LOG [EnrichmentService] enriching" \
           " itinerary 6779a1c2e4b2 (5120 places)" in lines
    # three reads in one batch, then the previous log of each container that restarted
    calls = [c.args for c in cluster.calls("kubectl")]
    assert [a[:2] for a in calls] == [("get", "pods"), ("get", "events"),
                                      ("get", "secrets,configmaps,persistentvolumeclaims"),
                                      ("logs", "api-enrichment-5f7b9c8d6-m4t7w"),
                                      ("logs", "api-generation-6d9c7b5f4-q8x2m")]
    assert calls[0] == ("get", "pods", "-n", "app", "-l", "app.kubernetes.io/part-of="
                        "k3s-vps-platform,app.kubernetes.io/instance=apps", "-o", "json")
    assert calls[4] == ("logs", "api-generation-6d9c7b5f4-q8x2m", "-n", "app", "-c",
                        "api-generation", "--previous", "--tail=50", "--limit-bytes=65536")
    assert all(c.rc == 0 for c in cluster.calls("kubectl"))
    # a Secret's values never leave kubectl: only its keys do
    refs_out = cluster.calls("kubectl")[2].stdout
    assert "Secret\tapp-config\tBETTER_AUTH_SECRET BETTER_AUTH_URL MONGODB_URI REDIS_URL \n" \
        in refs_out
    for value in SECRET_VALUES:
        encoded = base64.b64encode(value.encode()).decode()
        assert all(value not in c.stdout and encoded not in c.stdout
                   for c in cluster.calls("kubectl"))
        assert value not in out


def test_json_for_machines(cluster: Standins, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    seed(cluster, ["missing-secret-key"], healthy=["api-generation", "api-enrichment"])
    assert diagnose(tmp_path, json=True) == 1
    found = json.loads(capsys.readouterr().out)
    assert [(f["pod"], f["container"], f["cause"]) for f in found] == [(
        "api-gateway-7c9d6b8f4d-r2d8v", "api-gateway",
        "Secret app-config has no key REDIS_URL, which env REDIS_URL of container api-gateway"
        " needs: set it with inv secrets.edit secret-app, then apply it with inv apps.deploy")]
    assert [c.args[0] for c in cluster.calls("kubectl")] == ["get", "get", "get"]  # no logs


def test_every_pod_ready_exits_zero(cluster: Standins, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    seed(cluster, [], healthy=["api-gateway", "api-generation", "api-enrichment"])
    assert diagnose(tmp_path) == 0
    assert capsys.readouterr().out == "every pod of ours in namespace app is Ready (4 pods)\n"


def test_one_app_by_name(cluster: Standins, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    seed(cluster, ["probe-startup-404"], healthy=[])
    assert diagnose(tmp_path, name="api-gateway") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("app/api-gateway-7c9d6b8f4d-k7p3z (api-gateway): its startup"
                             " probe fails: GET / on port http (3000) answers 404")
    assert out[-1] == "needs attention: api-gateway-7c9d6b8f4d-k7p3z (1 pod of ours in" \
                      " namespace app examined)"


@pytest.mark.parametrize(("failure", "line"), [
    ("unreachable",
     "error: reading the pods of namespace app: the Kubernetes API is unreachable (The"
     " connection to the server 127.0.0.1:6443 was refused - did you specify the right host"
     " or port?): is K3s running on the first server, and the SSH tunnel up?"),
    ("unauthorized",
     "error: reading the pods of namespace app: the API refused our credentials"
     " (Unauthorized): is the kubeconfig from this cluster? Re-run inv k3s.install to fetch"
     " it again"),
])
def test_an_api_that_fails_is_one_error_line(cluster: Standins, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], failure: str,
                                             line: str) -> None:
    seed(cluster, ["crashloop-exit-1"], healthy=[])
    cluster.inject(**{failure: True})
    assert diagnose(tmp_path) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", line + "\n")
