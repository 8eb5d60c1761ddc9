"""inv upgrade through the STAND-IN kubectl and helm (tests/standins/: no cluster here).

A cluster converged by the real ingress.certs at the old pin (cert-manager v1.13.1),
then the pin bumped in the inventory: the plan names only that move, the upgrade runs
only ingress.certs (the real layer, from tasks.deploy.LAYERS), its health gate passes,
and a second run has nothing to do. A failing upgrade: helm's own rollback is seen and
not repeated; a layer that fails after helm succeeded gets ``helm rollback`` to the
revision before; both stop with one line and exit 1.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from tasks import ingress
from tasks.cli import Session
from tasks.cluster import access
from tasks.cluster.access import ClusterTarget
from tasks.engine.errors import UserError
from tasks.model.load import load
from tasks.stack import charts
from tasks.stack.render import Release
from tasks.upgrade.apply import runners
from tasks.upgrade.apply import upgrade as apply_upgrade
from tasks.upgrade.collection import upgrade
from tests.standins.harness import Standins, chart_archive
from tests.standins.standin_common import parse_kinds
from tests.unit.inventory_text import BASE, inventory
from tests.unit.test_platform_standins import TRAEFIK

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "vps1"},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                   "message": "kubelet is posting ready status"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.3+k3s1"}}}
CERT_MANAGER = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "cert-manager"}, "spec": {"replicas": 1}}
NEW = "versions: {cert_manager: v1.14.5}\n"
#: CRDs a chart archive carries in its crds/ folder, by (chart, version); none by default.
CRDS: dict[tuple[str, str], list[dict[str, Any]]] = {}


@pytest.fixture
def cluster(standins: Standins, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Standins:
    """K3s as it starts (one Ready node at the pinned K3s, its Traefik), cert-manager
    converged by ingress.certs at v1.13.1; the charts tiny archives of the pinned names."""
    tools = standins.tools()

    @contextmanager
    def standin_cluster(session: Session) -> Iterator[ClusterTarget]:
        yield ClusterTarget(name="cluster standin", tools=tools,
                            kubeconfig=standins.kubeconfig, env=standins.env(tools))

    def archive(release: Release) -> Path:
        return chart_archive(tmp_path / "charts", release.chart, release.version,
                             crds=CRDS.get((release.chart, release.version), ()))

    monkeypatch.setattr(access, "cluster", standin_cluster)
    monkeypatch.setattr(charts, "chart_archive", archive)
    standins.record(NODE)
    for obj in TRAEFIK:
        standins.apply(obj, "k3s-helm-controller")
    standins.configure(chart_objects={"cert-manager": [CERT_MANAGER]})
    old = Session(load(inventory(tmp_path, BASE)))
    assert ingress.run(old), "ingress.certs at the old pin"
    assert revisions(standins) == [(1, "deployed", "v1.13.1")]
    standins.clear_calls()
    return standins


def revisions(standins: Standins) -> list[tuple[int, str, str]]:
    release = standins.releases()["cert-manager/cert-manager"]
    return [(r.revision, r.status, r.version) for r in release.revisions]


def run(tmp_path: Path, text: str, **options: bool) -> int:
    try:
        upgrade(Context(), inventory=str(inventory(tmp_path, text)), **options)
    except Exit as exc:
        return int(exc.code)
    return 0


def helm_lines(standins: Standins) -> list[str]:
    return [c.line for c in standins.calls("helm")
            if c.args[0] in ("upgrade", "rollback")]


def test_check_shows_the_one_move_and_changes_nothing(
        cluster: Standins, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, BASE + NEW, check=True) == 0
    out, err = capsys.readouterr()
    assert (out.splitlines(), err) == ([
        "1 version(s) move, layer by layer: ingress.certs",
        "component     where         from     to       layer",
        "cert-manager  cert-manager  v1.13.1  v1.14.5  ingress.certs",
        "read before upgrading:",
        "cert-manager v1.14.5:",
        "  https://cert-manager.io/docs/releases/upgrading/upgrading-1.13-1.14",
        "  https://cert-manager.io/docs/releases/release-notes/release-notes-1.14",
        "not deployed (inv deploy.all installs it): kube-prometheus-stack (no release"
        " monitoring/kube-prometheus-stack)",
        "not deployed (inv deploy.all installs it): strimzi (no release kafka/strimzi)",
        "not deployed (inv deploy.all installs it): kafka (no Kafka kafka/my-cluster)",
        "not deployed (inv deploy.all installs it): flux2 (no release flux-system/flux2)",
        "not deployed (inv deploy.all installs it): apps (no release app/apps)"], "")
    assert helm_lines(cluster) == []
    assert revisions(cluster) == [(1, "deployed", "v1.13.1")]


def test_the_moving_layer_alone_then_nothing_to_do(
        cluster: Standins, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, BASE + NEW) == 0
    out, _ = capsys.readouterr()
    archive = tmp_path / "charts" / "cert-manager-v1.14.5.tgz"
    assert helm_lines(cluster) == [
        f"helm upgrade --install cert-manager {archive} -n cert-manager --create-namespace"
        " -f - --wait --timeout=600s --rollback-on-failure"]
    assert revisions(cluster) == [(1, "superseded", "v1.13.1"), (2, "deployed", "v1.14.5")]
    assert "upgrade                 == ingress.certs: cert-manager v1.13.1 -> v1.14.5" in out
    assert "upgrade                 ingress.certs: healthy at the new versions" in out
    # the gate read the nodes, the releases and the layer's Deployments
    gets = [c.line for c in cluster.calls("kubectl") if c.args[0] == "get"]
    assert "kubectl get deployments -n cert-manager -o json" in gets
    assert gets.count("kubectl get nodes -o json") == 2  # the plan's read, the gate's

    cluster.clear_calls()
    assert run(tmp_path, BASE + NEW) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].startswith(
        "nothing to upgrade: every pinned version is the one running (5 not deployed:")
    assert len(out.splitlines()) == 1
    assert [c.args[0] for c in cluster.calls()] == ["get", "list", "get"]  # reads only


def test_helm_rolled_back_by_itself_is_not_rolled_back_again(
        cluster: Standins, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.inject(helm_fail={"cert-manager/cert-manager": "context deadline exceeded"})
    assert run(tmp_path, BASE + NEW) == 1
    _, err = capsys.readouterr()
    assert err.splitlines() == [
        "error: upgrade stopped at ingress.certs: cert-manager: chart v1.14.5: upgrade"
        " cert-manager/cert-manager: chart is cert-manager-v1.13.1, want cert-manager-v1.14.5:"
        " exit 1: Error: UPGRADE FAILED: release cert-manager failed, and has been rolled back"
        " due to"
        " rollback-on-failure being set: context deadline exceeded; helm already rolled"
        " cert-manager/cert-manager back to cert-manager-v1.13.1 (revision 3)"]
    assert revisions(cluster) == [(1, "superseded", "v1.13.1"), (2, "failed", "v1.14.5"),
                                  (3, "deployed", "v1.13.1")]
    assert [line.split()[1] for line in helm_lines(cluster)] == ["upgrade"]


def test_a_layer_failing_after_the_chart_rolls_the_chart_back(
        cluster: Standins, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The new cert-manager is deployed, then its issuers do not get Ready: back to the
    revision that ran before (``helm rollback``), and the run stops."""
    cluster.inject(not_ready={"ClusterIssuer/-/letsencrypt-prod": "Failed to register ACME"
                                                                  " account: 403"})
    assert run(tmp_path, BASE + NEW) == 1
    _, err = capsys.readouterr()
    assert err.splitlines() == [
        "error: upgrade stopped at ingress.certs: cert-manager: ClusterIssuers Ready: wait for"
        " ClusterIssuer/-/letsencrypt-prod: exit 1: error: timed out waiting for the condition"
        " on clusterissuers/letsencrypt-prod; cert-manager/cert-manager rolled back to"
        " revision 1 (cert-manager-v1.13.1)"]
    assert helm_lines(cluster)[1:] == [
        "helm rollback cert-manager 1 -n cert-manager --wait --timeout=600s"]
    assert revisions(cluster) == [(1, "superseded", "v1.13.1"), (2, "superseded", "v1.14.5"),
                                  (3, "deployed", "v1.13.1")]
    assert cluster.releases()["cert-manager/cert-manager"].current.description == \
        "Rollback to 1"


def test_a_downgrade_is_refused_before_anything_changes(
        cluster: Standins, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, BASE + "versions: {cert_manager: v1.12.9}\n") == 1
    _, err = capsys.readouterr()
    assert err.splitlines() == [
        "error: cert-manager: release cert-manager/cert-manager runs v1.13.1, newer than"
        " versions.cert_manager v1.12.9: downgrades are refused (restore a backup instead)"]
    assert helm_lines(cluster) == []


def test_the_new_charts_crds_come_first(cluster: Standins, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A chart that ships CRDs in crds/ (as Strimzi and kube-prometheus-stack do): Helm
    would leave the old ones; the upgrade applies the new archive's first, server-side."""
    (kind,) = parse_kinds(["cert-manager.io/v1 Certificate certificates ns cert,certs"])
    crd = kind.crd()
    column = {"name": "Ready", "type": "string",
              "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [column]
    monkeypatch.setitem(CRDS, ("cert-manager", "v1.14.5"), [crd])
    assert run(tmp_path, BASE + NEW) == 0
    out, _ = capsys.readouterr()
    changes = [(c.binary, *c.args[:3]) for c in cluster.calls()
               if c.args[0] in ("apply", "upgrade")]
    assert changes == [("kubectl", "apply", "--server-side", "--field-manager=k3s-vps-platform"),
                       ("helm", "upgrade", "--install", "cert-manager")]
    live = cluster.object("CustomResourceDefinition/-/certificates.cert-manager.io")
    assert live is not None
    assert live["spec"]["versions"][0]["additionalPrinterColumns"] == [column]
    assert "certificates.cert-manager.io" in " ".join(
        c.line for c in cluster.calls("kubectl") if c.args[0] == "wait")
    assert "cert-manager: 1 CRDs of chart cert-manager v1.14.5 (Helm upgrades none)" in out


def k3s_layer(cluster: Standins, kubelet: str, calls: list[str]) -> Any:
    """k3s.install's effect as the API sees it (the node restarted on the new kubelet);
    the host layer itself runs over SSH and has its own tests (test_k3s_steps.py)."""
    def run(session: Session) -> bool:
        calls.append("k3s.install")
        node = copy.deepcopy(NODE)
        node["status"]["nodeInfo"]["kubeletVersion"] = kubelet
        cluster.record(node)
        return True
    return run


def test_layers_in_order_each_gated(cluster: Standins, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    s = Session(load(inventory(tmp_path, BASE + "versions: {k3s: v1.33.4+k3s1,"
                                              " cert_manager: v1.14.5}\n")))
    layers = {**runners(), "k3s.install": k3s_layer(cluster, "v1.33.4+k3s1", calls)}
    plan = apply_upgrade(s, layers)
    assert plan.layers() == ["k3s.install", "ingress.certs"]
    assert calls == ["k3s.install"]
    assert revisions(cluster)[-1] == (2, "deployed", "v1.14.5")
    out, _ = capsys.readouterr()
    notes = [line.split(None, 1)[1] for line in out.splitlines() if line.startswith("upgrade ")]
    assert notes == ["== k3s.install: k3s v1.33.3+k3s1 -> v1.33.4+k3s1",
                     "k3s.install: healthy at the new versions",
                     "== ingress.certs: cert-manager v1.13.1 -> v1.14.5",
                     "ingress.certs: healthy at the new versions"]


def test_a_gate_that_fails_stops_before_the_next_layer(cluster: Standins, tmp_path: Path) -> None:
    calls: list[str] = []
    s = Session(load(inventory(tmp_path, BASE + "versions: {k3s: v1.33.4+k3s1,"
                                              " cert_manager: v1.14.5}\n")))
    layers = {**runners(), "k3s.install": k3s_layer(cluster, "v1.33.3+k3s1", calls)}
    with pytest.raises(UserError) as caught:
        apply_upgrade(s, layers)
    assert caught.value.lines == [
        "upgrade stopped at k3s.install: node vps1 runs v1.33.3+k3s1, not v1.33.4+k3s1;"
        " nothing to roll back (no chart had moved)"]
    assert helm_lines(cluster) == []  # ingress.certs never ran
    assert revisions(cluster) == [(1, "deployed", "v1.13.1")]
