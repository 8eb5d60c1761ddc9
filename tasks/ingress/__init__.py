"""``ingress.certs``: Traefik tuned and serving, cert-manager installed, its API checked,
both ClusterIssuers Ready.

In order: the HelmChartConfig (K3s's helm-controller redeploys Traefik; we wait until
its Service carries our NodePorts and the rollout is done), the cert-manager namespace
(PodSecurity labels), the cert-manager chart from the pulled archive (``--wait``), a
check of the cert-manager API the way ``cmctl check api`` does it (a dry-run
Certificate, accepted only once the CRDs, the webhook and its CA are in place: each
failure named as its cause), then the ClusterIssuers, waited Ready (an ACME server that
cannot be reached is named in the issuer's Ready message, shown by the verification).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tasks.cli import Session
from tasks.cluster import kube
from tasks.cluster.kube import Tools
from tasks.cluster.steps import HelmReleaseStep, ObjectsStep
from tasks.engine.command import Command
from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.shell import cmd, piped
from tasks.engine.step import Change, Step
from tasks.engine.target import Target
from tasks.layer import ClusterLayer, run_cluster_layer
from tasks.stack.components import cert_manager, traefik
from tasks.stack.context import context
from tasks.stack.render import Release

UNTIL = Path(__file__).resolve().parents[1] / "cluster" / "until.py"
API_CHECK = {
    "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
    "metadata": {"name": "stack-api-check", "namespace": cert_manager.NAMESPACE},
    "spec": {"secretName": "stack-api-check", "dnsNames": ["api-check.invalid"],
             "issuerRef": {"name": "stack-api-check", "kind": "Issuer"}},
}


def cert_manager_cause(stderr: str) -> str:
    """The usual reasons the cert-manager API refuses a dry-run Certificate, in one line."""
    low = stderr.lower()
    if "no matches for kind" in low or "could not find the requested resource" in low:
        return "the cert-manager CRDs are missing (installCRDs: true in" \
               " helm-values/cert-manager.yaml)"
    if "x509" in low or "certificate signed by unknown authority" in low:
        return "the webhook's CA is not injected yet (cert-manager-cainjector)"
    if "failed calling webhook" in low or "no endpoints available" in low:
        return "the cert-manager webhook is not ready yet (cert-manager-webhook)"
    lines = stderr.strip().splitlines()
    return lines[-1][:200] if lines else "no answer"


class CertManagerApi(Step):
    """cert-manager answers for Certificates: CRDs, webhook and CA injection in place."""

    id = "cert-manager-api"
    name = "cert-manager: API ready"

    def __init__(self, tools: Tools, seconds: int = 180) -> None:
        self.tools, self.seconds = tools, seconds
        self.stdin = yaml.safe_dump(API_CHECK).encode()
        self.argv = (tools.kubectl, "create", "--dry-run=server", "-o", "name", "-f", "-")
        self.fact = Fact("cert-manager:api", piped(self.stdin, cmd(*self.argv)).rstrip(),
                         lambda raw: None if raw.rc == 0 else cert_manager_cause(raw.stderr))

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.fact]

    def plan(self, facts: Facts) -> list[Change]:
        cause = facts[self.fact]
        if cause is None:
            return []
        return [Change(f"wait for the cert-manager API ({cause})", commands=(
            Command((sys.executable, str(UNTIL), str(self.seconds), "--", *self.argv),
                    stdin=self.stdin, stdin_label="a dry-run Certificate",
                    timeout=self.seconds + 30),))]

    def verify(self, facts: Facts) -> list[str]:
        cause = facts[self.fact]
        return [f"the cert-manager API refuses a Certificate: {cause}"] if cause else []


def traefik_waits(tools: Tools, http: int, https: int) -> list[Command]:
    def port(name: str, number: int) -> Command:
        return Command((tools.kubectl, "wait", "-n", "kube-system", "service/traefik",
                        f"--for=jsonpath={{.spec.ports[?(@.name==\"{name}\")].nodePort}}"
                        f"={number}", "--timeout=300s"), timeout=330)

    return [port("web", http), port("websecure", https),
            kube.rollout_status(tools, "deployment", "traefik", "kube-system", 300)]


def default_archive(release: Release) -> Path:
    from tasks.stack.charts import chart_archive

    return chart_archive(release)


def steps(session: Session, target: Target,
          archive: Callable[[Release], Path] = default_archive) -> list[Step]:
    inv = session.inventory.data
    ctx = context(inv)
    tools: Tools = target.tools  # type: ignore[attr-defined]
    proxy = traefik.render(ctx)
    cm = cert_manager.render(ctx)
    namespaces = [d for d in cm.documents if d.kind == "Namespace"]
    issuers = [d for d in cm.documents if d.kind == "ClusterIssuer"]
    (release,) = cm.releases
    return [
        ObjectsStep("traefik", "traefik: HelmChartConfig, NodePorts", tools, proxy.documents,
                    waits=traefik_waits(tools, inv.k3s.traefik_http_nodeport,
                                        inv.k3s.traefik_https_nodeport)),
        ObjectsStep("cert-manager-namespace", "cert-manager: namespace", tools, namespaces),
        HelmReleaseStep("cert-manager", f"cert-manager: chart {release.version}", tools,
                        release, archive=archive),
        CertManagerApi(tools),
        ObjectsStep("cert-manager-issuers", "cert-manager: ClusterIssuers Ready", tools,
                    issuers, waits=[kube.wait(tools, "clusterissuer", d.name, None, "Ready", 180)
                                    for d in issuers],
                    must_be_ready=[f"ClusterIssuer/-/{d.name}" for d in issuers]),
    ]


LAYER = ClusterLayer("ingress.certs", steps)


def run(session: Session) -> bool:
    return run_cluster_layer(session, LAYER)


__all__ = ["LAYER", "Raw", "run", "steps"]
