"""ingress.certs and flux.bootstrap, empty to converged, through the STAND-IN kubectl and
helm (tests/standins/: no cluster here). Our real layers' steps, facts and commands; the
cluster is K3s as it starts (its Traefik included), the charts tiny archives of the
pinned names and versions. Then a second run: nothing changes, and the reads a converged
platform costs, counted. A canary secret value never leaves stdin.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks import flux, ingress
from tasks.cluster.kube import Tools
from tasks.engine.report import Status
from tasks.engine.step import Step
from tasks.stack.render import Document, Release
from tests.standins.harness import Standins, chart_archive
from tests.unit.cluster_catalog import ToolsTarget, session
from tests.unit.inventory_text import OPENSSH_HEADER

CANARY = "canary-" + "5e7a91c0d4b2"
TRAEFIK = [  # what K3s's bundled Traefik chart has made, with our NodePorts applied
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "traefik", "namespace": "kube-system"},
     "spec": {"replicas": 1}, "status": {"replicas": 1, "availableReplicas": 1}},
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "traefik", "namespace": "kube-system"},
     "spec": {"type": "LoadBalancer", "ports": [
         {"name": "web", "port": 80, "nodePort": 32170},
         {"name": "websecure", "port": 443, "nodePort": 31931}]}},
]
FLUX_SECRETS = [
    {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
     "metadata": {"name": "flux-system", "namespace": "flux-system"},
     "stringData": {"identity": f"{OPENSSH_HEADER}{CANARY}\n",
                    "identity.pub": "ssh-ed25519 AAAA flux-vps", "known_hosts": "github.com x"}},
    {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
     "metadata": {"name": "sops-age", "namespace": "flux-system"},
     "stringData": {"age.agekey": f"AGE-SECRET-KEY-1{CANARY}"}},
]


def layer_steps(standins: Standins, tools: Tools, charts: Path) -> list[list[Step]]:
    for obj in TRAEFIK:
        standins.apply(obj, "k3s-helm-controller")

    def archive(release: Release) -> Path:
        return chart_archive(charts, release.chart, release.version)

    target: Any = ToolsTarget(tools)
    docs = [Document("secrets/secret-flux.sops.yaml", d) for d in FLUX_SECRETS]
    return [ingress.steps(session(), target, archive=archive),
            flux.steps(session(), target, docs, archive=archive)]


def run(standins: Standins, tools: Tools, layers: Sequence[Sequence[Step]]
        ) -> tuple[bool, list[tuple[str, Status]], str]:
    done = standins.converge(tools, *layers)
    return done.ok, done.outcomes(), done.text


def test_empty_to_converged_then_nothing_to_do(standins: Standins, tmp_path: Path) -> None:
    tools = standins.tools()
    layers = layer_steps(standins, tools, tmp_path / "charts")
    ok, outcomes, text = run(standins, tools, layers)
    assert ok, text
    assert outcomes == [
        ("traefik", Status.CHANGED), ("cert-manager-namespace", Status.CHANGED),
        ("cert-manager", Status.CHANGED), ("cert-manager-api", Status.OK),
        ("cert-manager-issuers", Status.CHANGED),
        ("flux-namespace", Status.CHANGED), ("flux2", Status.CHANGED),
        ("flux-secrets", Status.CHANGED), ("flux-sync", Status.CHANGED)]
    releases = standins.releases()
    assert sorted(releases) == ["cert-manager/cert-manager", "flux-system/flux2"]
    objects = standins.objects()
    for key in ("ClusterIssuer/-/letsencrypt-prod", "ClusterIssuer/-/letsencrypt-staging",
                "GitRepository/flux-system/flux-system", "Kustomization/flux-system/flux-system",
                "Secret/flux-system/sops-age", "HelmChartConfig/kube-system/traefik"):
        assert key in objects, sorted(objects)

    standins.clear_calls()
    ok, outcomes, text = run(standins, tools, layers)
    assert ok, text
    assert {status for _, status in outcomes} == {Status.OK}, text
    reads = [c.line.split(" -")[0] for c in standins.calls()]
    # A converged platform, per layer: one batch of reads; per component one kubectl read,
    # per release one helm get values, one helm list per layer.
    assert sorted(reads) == sorted([
        # ingress.certs: traefik, namespace, issuers (diff); the API check; the release
        "kubectl diff", "kubectl diff", "kubectl diff", "kubectl create",
        "helm list", "helm get values cert-manager",
        # flux.bootstrap: namespace, secrets, sync (diff); the release
        "kubectl diff", "kubectl diff", "kubectl diff", "helm list", "helm get values flux2"])
    assert not [c for c in standins.calls() if "apply" in c.argv or "upgrade" in c.argv]


def test_the_canary_secret_travels_on_stdin_only(standins: Standins, tmp_path: Path) -> None:
    tools = standins.tools()
    ok, _, text = run(standins, tools, layer_steps(standins, tools, tmp_path / "charts"))
    assert ok, text
    standins.carried_on_stdin_only(CANARY, text)


def test_a_run_finds_kubectl_and_helm_once(standins: Standins) -> None:
    """Every cluster layer of a run shares the Session's tools: one ``helm version``."""
    s = session()
    found = s.tools()
    assert s.tools() is found
    assert [c.line for c in standins.calls("helm")] == ["helm version --short"]
    assert (found.helm, found.helm_major) == (str(standins.helm), 4)
