"""apps.deploy, empty to converged, through the STAND-IN kubectl and helm (tests/standins/:
no cluster here). Our real layer's steps, facts and commands; the cluster is K3s with
cert-manager installed (its CRDs; its ingress-shim makes the Ingress's Certificate), the
release our chart from its directory, whose objects the stand-in helm creates as the real
`helm template` renders them. Then a no-op second run with its reads counted, a failed
upgrade rolled back and said in one line, a Certificate that is not Ready, and the
registry and app Secrets' canaries, which never leave stdin.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tasks import apps
from tasks.cli import Session
from tasks.cluster.kube import Tools
from tasks.engine.report import Status, Summary
from tasks.model.fields import build
from tasks.model.load import Loaded
from tasks.model.model import Inventory
from tasks.stack.components import apps as component
from tasks.stack.context import context
from tasks.stack.render import Document
from tests.standins.harness import Standins
from tests.unit.cluster_catalog import ToolsTarget
from tests.unit.platform_ctx import DEFAULT, _merge

CANARY = "canary-" + "9b3e0d1f77a4"
SECRETS = [
    {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
     "metadata": {"name": "app-config", "namespace": "app"},
     "stringData": {"MONGODB_URI": f"mongodb+srv://u:{CANARY}@db.example.net/app",
                    "REDIS_URL": f"rediss://:{CANARY}@cache.example.net:6379",
                    "BETTER_AUTH_SECRET": CANARY, "BETTER_AUTH_URL": "https://api.example.com"}},
    {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
     "metadata": {"name": "ghcr-pull", "namespace": "app"},
     "stringData": {".dockerconfigjson": json.dumps(
         {"auths": {"ghcr.io": {"auth": f"dXNlcjo{CANARY}"}}})}},
    {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
     "metadata": {"name": "kafka-app-client", "namespace": "app"},
     "stringData": {"password": CANARY}},
]


def session(**changes: Any) -> Session:
    inv, errors = build(Inventory, _merge(DEFAULT, changes))
    assert errors == [], errors
    return Session(Loaded(inv, Path("/nonexistent/inventory.yaml")))


@pytest.fixture
def cluster(standins: Standins, monkeypatch: pytest.MonkeyPatch) -> Tools:
    """K3s with cert-manager (its CRDs), and the stand-in helm told which objects our chart
    makes: those the real helm renders for the default inventory."""
    monkeypatch.delenv("STACK_HELM")  # the real, pinned helm for `helm template`
    rendered = component.render(context(session().inventory.data))
    monkeypatch.setenv("STACK_HELM", str(standins.helm))
    objects = [d.obj for d in rendered.documents if d.kind != "Namespace"]
    assert sorted(o["kind"] for o in objects) == [
        "Deployment", "Deployment", "Deployment", "HorizontalPodAutoscaler", "Ingress",
        "PodDisruptionBudget", "Service"]
    standins.install_crds("cert-manager")
    standins.configure(chart_objects={"apps": objects})
    tools = standins.tools()
    standins.clear_calls()
    return tools


def run(standins: Standins, tools: Tools, s: Session | None = None
        ) -> tuple[bool, list[tuple[str, Status]], Summary, str]:
    docs = [Document("secrets/secret-app.sops.yaml", d) for d in SECRETS]
    steps = apps.steps(s or session(), ToolsTarget(tools), docs)  # type: ignore[arg-type]
    done = standins.converge(tools, steps)
    return done.ok, done.outcomes(), done.summary, done.text


def call(standins: Standins, binary: str, *args: str, stdin: bytes = b""
         ) -> tuple[int, str, str]:
    exe = standins.kubectl if binary == "kubectl" else standins.helm
    proc = subprocess.run([str(exe), *args], input=stdin, capture_output=True, check=False,
                          env={**os.environ, "KUBECONFIG": str(standins.kubeconfig)})
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def details(summary: Summary, step: str) -> Sequence[str]:
    return next(o.details for o in summary.outcomes if o.step_id == step)


def test_the_standins_for_this_layer(standins: Standins, tmp_path: Path) -> None:
    """What the layer needs of the stand-ins: a chart directory for helm, cert-manager's
    ingress-shim, a get of several types in one List."""
    empty = tmp_path / "nochart"
    empty.mkdir()
    rc, _, err = call(standins, "helm", "upgrade", "--install", "x", str(empty), "-n", "x",
                      "--create-namespace", "-f", "-", "--wait", "--timeout=60s",
                      "--rollback-on-failure", stdin=b"{}")
    assert (rc, err) == (1, f"Error: unable to detect chart at {empty}/Chart.yaml: open"
                            f" {empty}/Chart.yaml: no such file or directory\n")
    rc, _, err = call(standins, "kubectl", "get", "certificate,order", "-n", "app", "-o", "json")
    assert (rc, err) == (1, 'error: the server doesn\'t have a resource type "certificate"\n')
    standins.install_crds("cert-manager")
    standins.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
                   "test")
    standins.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": {"name": "web", "namespace": "app", "annotations": {
                        "cert-manager.io/cluster-issuer": "letsencrypt-staging"}},
                    "spec": {"tls": [{"hosts": ["a.example.com"], "secretName": "web-tls"}],
                             "rules": [{"host": "a.example.com"}]}}, "test")
    rc, out, _ = call(standins, "helm", "upgrade", "--install", "apps", str(component.CHART),
                      "-n", "app", "-f", "-", "--wait", "--timeout=60s",
                      "--rollback-on-failure", stdin=b"a: 1\n")
    assert rc == 0 and "STATUS: deployed" in out
    assert standins.releases()["app/apps"].current.version == "0.1.0"
    rc, out, _ = call(standins, "kubectl", "get", "certificate,order", "-n", "app", "-o", "json")
    listed = json.loads(out)
    assert (rc, listed["kind"], [(i["kind"], i["metadata"]["name"]) for i in listed["items"]]) \
        == (0, "List", [("Certificate", "web-tls")])
    cert = listed["items"][0]
    assert cert["spec"] == {"dnsNames": ["a.example.com"], "secretName": "web-tls",
                            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer",
                                          "name": "letsencrypt-staging"},
                            "usages": ["digital signature", "key encipherment"]}
    assert cert["metadata"]["ownerReferences"][0]["kind"] == "Ingress"
    assert cert["status"]["conditions"][0]["type"] == "Ready"


def test_empty_to_converged_then_nothing_to_do(standins: Standins, cluster: Tools) -> None:
    ok, outcomes, _, text = run(standins, cluster)
    assert ok, text
    assert outcomes == [("apps-namespace", Status.CHANGED), ("apps-secrets", Status.CHANGED),
                        ("apps", Status.CHANGED), ("apps-certificate", Status.OK)]
    (release,) = standins.releases().values()
    assert (release.namespace, release.name, release.current.chart, release.current.version,
            release.current.status) == ("app", "apps", "apps", "0.1.0", "deployed")
    assert release.current.values == component.values(context(session().inventory.data))
    objects = standins.objects()
    for key in ("Namespace/-/app", "Secret/app/app-config", "Secret/app/ghcr-pull",
                "Secret/app/kafka-app-client", "Deployment/app/api-gateway",
                "Deployment/app/api-generation", "Deployment/app/api-enrichment",
                "Ingress/app/api-gateway"):
        assert key in objects, sorted(objects)
    assert objects["Namespace/-/app"]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
    cert = objects["Certificate/app/api-gateway-tls"]  # made by the ingress-shim
    assert cert["spec"]["issuerRef"]["name"] == "letsencrypt-prod"
    assert cert["spec"]["dnsNames"] == ["api.example.com"]
    upgrade = next(c for c in standins.calls("helm") if "upgrade" in c.argv)
    assert upgrade.args == ("upgrade", "--install", "apps", str(component.CHART), "-n", "app",
                            "--create-namespace", "-f", "-", "--wait", "--timeout=600s",
                            "--rollback-on-failure")
    # the Secrets and the namespace came first, the release after them
    lines = [c.line.split(" -")[0] for c in standins.calls() if c.rc == 0
             and ("apply" in c.argv or "upgrade" in c.argv)]
    assert lines == ["kubectl apply", "kubectl apply", "helm upgrade"]

    standins.clear_calls()
    ok, outcomes, _, text = run(standins, cluster)
    assert ok, text
    assert [status for _, status in outcomes] == [Status.OK] * 4, text
    reads = [c.line.split(" -")[0] for c in standins.calls()]
    assert sorted(reads) == sorted([
        "kubectl diff", "kubectl diff",  # namespace, Secrets
        "helm list", "helm get values apps",  # the release
        "kubectl get certificate,certificaterequest,order,challenge"])  # its certificate
    assert not [c for c in standins.calls() if "apply" in c.argv or "upgrade" in c.argv]


def test_a_failed_upgrade_is_rolled_back_and_said_in_one_line(standins: Standins,
                                                              cluster: Tools) -> None:
    ok, _, _, text = run(standins, cluster)
    assert ok, text
    newer = session(apps={"api_gateway": {"image": "ghcr.io/team-mercurious/api-gateway:1.1.0"}})
    standins.inject(helm_fail={"app/apps": "resource Deployment/app/api-gateway not ready."
                                           " status: InProgress, message: Available: 0/2\n"
                                           "context deadline exceeded"})
    ok, outcomes, summary, text = run(standins, cluster, newer)
    assert not ok
    assert outcomes == [("apps-namespace", Status.OK), ("apps-secrets", Status.OK),
                        ("apps", Status.FAILED), ("apps-certificate", Status.SKIPPED)]
    (line,) = details(summary, "apps")
    assert line == (
        "apps: chart apps 0.1.0 (api-gateway, api-generation, api-enrichment): upgrade"
        " app/apps: values differ from helm-values/apps.yaml (apps.api-gateway.image): exit 1:"
        " Error: UPGRADE FAILED: release apps failed, and has been rolled back due to"
        " rollback-on-failure being set: resource Deployment/app/api-gateway not ready."
        " status: InProgress, message: Available: 0/2 ... context deadline exceeded")
    release = standins.releases()["app/apps"]
    assert [(r.revision, r.status) for r in release.revisions] == [
        (1, "superseded"), (2, "failed"), (3, "deployed")]
    images = [r.values["apps"]["api-gateway"]["image"] for r in release.revisions]
    assert images == ["ghcr.io/team-mercurious/api-gateway:1.0.0",
                      "ghcr.io/team-mercurious/api-gateway:1.1.0",
                      "ghcr.io/team-mercurious/api-gateway:1.0.0"]  # the rollback: 1 again
    assert release.current.description == "Rollback to 1"

    standins.clear_injections()  # the next run upgrades
    ok, outcomes, _, text = run(standins, cluster, newer)
    assert ok, text
    assert ("apps", Status.CHANGED) in outcomes
    assert standins.releases()["app/apps"].current.values["apps"]["api-gateway"]["image"] == \
        "ghcr.io/team-mercurious/api-gateway:1.1.0"


def test_a_certificate_that_is_not_ready_is_said_in_one_line(
        standins: Standins, cluster: Tools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apps, "CERTIFICATE_SECONDS", 1)  # the stand-in never becomes Ready
    standins.inject(not_ready={"Certificate/app/api-gateway-tls":
                               "Issuing certificate as Secret does not exist"})
    ok, outcomes, summary, _ = run(standins, cluster)
    assert not ok
    assert outcomes[-1] == ("apps-certificate", Status.FAILED)
    (line,) = details(summary, "apps-certificate")
    assert line == ("apps: certificate for api.example.com Ready (letsencrypt-prod):"
                    " verification: exit 1: Certificate app/api-gateway-tls is not Ready:"
                    " Issuing certificate as Secret does not exist")
    waits = [c for c in standins.calls("kubectl") if c.args[:1] == ("wait",)]
    assert waits and all(c.args == ("wait", "--for=condition=Ready", "--timeout=60s",
                                    "certificate/api-gateway-tls", "-n", "app") for c in waits)


def test_the_registry_and_app_secrets_travel_on_stdin_only(standins: Standins,
                                                           cluster: Tools) -> None:
    ok, _, _, text = run(standins, cluster)
    assert ok, text
    secrets = standins.carried_on_stdin_only(CANARY, text)
    assert {c.line for c in secrets} == {  # they reached the cluster on stdin, only there
        "kubectl diff --server-side --field-manager=k3s-vps-platform --force-conflicts -f -",
        "kubectl apply --server-side --field-manager=k3s-vps-platform --force-conflicts -f -"}
    helm = [c for c in standins.calls() if c.binary == "helm"]
    assert helm and all(CANARY.encode() not in c.stdin for c in helm)  # values: no secret
