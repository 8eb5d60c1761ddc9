"""apps.deploy as data: its steps in order and what they wait for, the release's values
(the very values inv validate renders), and why a certificate is not Ready, read from
cert-manager objects shaped as the API returns them (each shape's source cited)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks import apps
from tasks.apps import certificates
from tasks.apps.certificates import Issuance, cause
from tasks.cluster.kube import Tools
from tasks.engine.errors import UserError
from tasks.engine.facts import Facts, Raw
from tasks.stack import helm
from tasks.stack.components import apps as component
from tasks.stack.context import context
from tasks.stack.render import Document
from tests.unit.cluster_catalog import ToolsTarget, session

TOOLS = Tools("/opt/kubectl", "/opt/helm", helm_major=4)
SECRETS = [Document("secrets/secret-app.sops.yaml", {
    "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-config", "namespace": "app"},
    "stringData": {"MONGODB_URI": "not-a-real-secret"}})]
CHART = str(Path(__file__).resolve().parents[2] / "charts" / "apps")


def layer(secrets: Any = SECRETS) -> list[Any]:
    return apps.steps(session(), ToolsTarget(TOOLS), secrets)  # type: ignore[arg-type]


def test_apps_deploy_steps_in_order_and_their_waits() -> None:
    steps = layer()
    assert [s.id for s in steps] == ["apps-namespace", "apps-secrets", "apps",
                                     "apps-certificate"]
    assert [s.name for s in steps] == [
        "apps: namespace", "apps: Secrets app-config",
        "apps: chart apps 0.1.0 (api-gateway, api-generation, api-enrichment)",
        "apps: certificate for api.example.com Ready (letsencrypt-prod)"]
    namespace, secrets, release, cert = steps
    assert [d.obj["metadata"]["name"] for d in namespace.docs] == ["app"]
    assert namespace.docs[0].obj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] \
        == "restricted"
    assert secrets.diff.exec is not None  # decrypted Secrets: stdin of an exec, no script
    assert "not-a-real-secret" not in secrets.diff.command
    assert (release.release.name, release.release.namespace, release.release.chart,
            release.release.version) == ("apps", "app", "apps", "0.1.0")
    ((change,),) = [c.commands for c in release.plan(Facts({
        release.listed.key: Raw("[]", 0),
        release.values.key: Raw("", 1, "Error: release: not found")}))]
    assert change.argv == (
        "/opt/helm", "upgrade", "--install", "apps", CHART, "-n", "app", "--create-namespace",
        "-f", "-", "--wait", "--timeout=600s", "--rollback-on-failure")
    assert change.timeout == 660
    assert cert.fact.command == ("/opt/kubectl get certificate,certificaterequest,order,challenge"
                                 " -n app -o json")
    (wait,) = [c for ch in cert.plan(Facts({cert.fact.key: Raw('{"items": []}', 0)}))
               for c in ch.commands]
    assert wait.argv == (sys.executable, str(certificates.UNTIL), "300", "--", "/opt/kubectl",
                         "wait", "--for=condition=Ready", "--timeout=60s",
                         "certificate/api-gateway-tls", "-n", "app")
    assert (wait.ok_codes, wait.timeout) == ((0, 1), 390)  # not Ready: verify says why


def test_helm_3_rolls_back_with_atomic() -> None:
    tools = Tools("/opt/kubectl", "/opt/helm", helm_major=3)
    release = apps.steps(session(), ToolsTarget(tools), None)[1]  # type: ignore[arg-type]
    ((change,),) = [c.commands for c in release.plan(Facts({  # type: ignore[attr-defined]
        release.listed.key: Raw("[]", 0),  # type: ignore[attr-defined]
        release.values.key: Raw("", 1, "Error: release: not found")}))]  # type: ignore[attr-defined]
    assert change.argv[-1] == "--atomic"


def test_plan_mode_without_secrets_leaves_their_step_out() -> None:
    assert [s.id for s in layer(None)] == ["apps-namespace", "apps", "apps-certificate"]


def test_the_release_values_are_what_validate_renders_and_lints(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One source: the values `helm upgrade` reads on stdin are those inv validate gave
    `helm template` and `helm lint` for charts/apps."""
    from tasks.stack.validate.run import validate_context
    from tests.unit.validate_fixtures import need_crd_schemas

    need_crd_schemas()  # the default render has custom resources
    seen: dict[str, list[dict[str, Any]]] = {"template": [], "lint": []}
    template, lint = helm.template, helm.lint

    def recording_template(chart: Path, *args: Any, **kwargs: Any) -> Any:
        if chart == component.CHART:
            seen["template"].append(json.loads(json.dumps(args[2])))
        return template(chart, *args, **kwargs)

    def recording_lint(chart: Path, values: dict[str, Any]) -> list[str]:
        seen["lint"].append(json.loads(json.dumps(values)))
        return lint(chart, values)

    monkeypatch.setattr(helm, "template", recording_template)
    monkeypatch.setattr(helm, "lint", recording_lint)
    assert validate_context(context(session().inventory.data)).problems == []
    release = layer()[2]
    (upgrade,) = release.plan(Facts({release.listed.key: Raw("[]", 0),
                                     release.values.key: Raw("", 1, "Error: release: not found")}
                                    ))[0].commands
    deployed = yaml.safe_load(upgrade.stdin)
    assert seen["template"] == [deployed]
    assert seen["lint"] == [deployed]
    assert deployed["apps"]["api-gateway"]["image"] == "ghcr.io/team-mercurious/api-gateway:1.0.0"


def test_the_release_converges_when_helm_reports_our_chart_and_values() -> None:
    release = layer()[2]
    values = release.release.values
    listed = [{"name": "apps", "namespace": "app", "revision": "1", "status": "deployed",
               "chart": "apps-0.1.0", "app_version": "", "updated": "x"}]
    facts = Facts({release.listed.key: Raw(json.dumps(listed), 0),
                   release.values.key: Raw(json.dumps(values), 0)})
    assert release.plan(facts) == []
    changed = json.loads(json.dumps(values))
    changed["apps"]["api-generation"]["replicas"] = 3
    facts = Facts({release.listed.key: Raw(json.dumps(listed), 0),
                   release.values.key: Raw(json.dumps(changed), 0)})
    assert [c.summary for c in release.plan(facts)] == [
        "upgrade app/apps: values differ from helm-values/apps.yaml"
        " (apps.api-generation.replicas)"]


# The Secrets ------------------------------------------------------------------------------

def test_the_secrets_are_those_of_the_apps_namespace_and_must_all_be_there() -> None:
    files = {
        "secret-app": [{"kind": "Secret", "metadata": {"name": "app-config",
                                                       "namespace": "app"}}],
        "secret-registry": [{"kind": "Secret", "metadata": {"name": "ghcr-pull",
                                                            "namespace": "app"}}],
        "secret-kafka": [{"kind": "Secret", "metadata": {"name": "app-client-password",
                                                         "namespace": "kafka"}},
                         {"kind": "Secret", "metadata": {"name": "kafka-app-client",
                                                         "namespace": "app"}}]}
    wanted = ["ghcr-pull", "kafka-app-client", "app-config"]
    docs = apps.secret_documents(lambda name: files[name], "app", wanted)
    assert [(d.source, d.name) for d in docs] == [
        ("secrets/secret-app.sops.yaml", "app-config"),
        ("secrets/secret-registry.sops.yaml", "ghcr-pull"),
        ("secrets/secret-kafka.sops.yaml", "kafka-app-client")]  # kafka's own is kafka.deploy's
    files["secret-registry"] = []
    with pytest.raises(UserError) as info:
        apps.secret_documents(lambda name: files[name], "app", wanted)
    assert str(info.value) == (
        "secrets/: no Secret app/ghcr-pull in secret-app.sops.yaml, secret-registry.sops.yaml,"
        " secret-kafka.sops.yaml, and the apps read it (helm-values/apps.yaml): run inv"
        " secrets.init")


# Why the certificate is not Ready ---------------------------------------------------------
#
# Objects as `kubectl get certificate,certificaterequest,order,challenge -o json` returns
# them: cert-manager links each to the one it came from by ownerReferences (Certificate ->
# CertificateRequest -> Order -> Challenge; cert-manager.io/docs/troubleshooting).

NAME = "api-gateway-tls"
HOSTS = ["api.example.com"]
OURS = ["203.0.113.20"]


def owned(kind: str, name: str, owner_kind: str, owner: str, status: dict[str, Any],
          spec: dict[str, Any] | None = None) -> dict[str, Any]:
    group = "cert-manager.io/v1" if kind in ("Certificate", "CertificateRequest") \
        else "acme.cert-manager.io/v1"
    owner_group = "acme.cert-manager.io/v1" if owner_kind == "Order" else "cert-manager.io/v1"
    return {"apiVersion": group, "kind": kind,
            "metadata": {"name": name, "namespace": "app",
                         "creationTimestamp": "2026-01-05T09:00:00Z",
                         "ownerReferences": [{"apiVersion": owner_group, "kind": owner_kind,
                                              "name": owner, "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec or {}, "status": status}


def ready(status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-05T09:00:00Z"}


def issuance(*, cert_ready: dict[str, Any], issuer: str = "letsencrypt-prod",
             request: str = "", order: tuple[str, str] = ("pending", ""),
             challenge: tuple[str, str] | None = None) -> Issuance:
    """A Certificate made by ingress-shim and, below it, the request, order and challenge
    cert-manager makes for it (names as cert-manager generates them)."""
    cert = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": NAME, "namespace": "app",
                         "ownerReferences": [{"apiVersion": "networking.k8s.io/v1",
                                              "kind": "Ingress", "name": "api-gateway"}]},
            "spec": {"dnsNames": HOSTS, "secretName": NAME,
                     "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer",
                                   "name": issuer}},
            "status": {"conditions": [cert_ready]}}
    items = [cert]
    if request:
        items.append(owned("CertificateRequest", f"{NAME}-1", "Certificate", NAME,
                           {"conditions": [ready("False", "Pending", request)]}))
        items.append(owned("Order", f"{NAME}-1-3546283291", "CertificateRequest", f"{NAME}-1",
                           {"state": order[0], "reason": order[1]}))
        if challenge is not None:
            items.append(owned("Challenge", f"{NAME}-1-3546283291-2873634563", "Order",
                               f"{NAME}-1-3546283291",
                               {"presented": True, "processing": challenge[0] == "pending",
                                "state": challenge[0], "reason": challenge[1]},
                               {"dnsName": HOSTS[0], "type": "HTTP-01"}))
    return Issuance(tuple(items))


NOT_YET = ready("False", "DoesNotExist", "Issuing certificate as Secret does not exist")
WAITING = 'Waiting on certificate issuance from order app/api-gateway-tls-1-3546283291: "pending"'
SELF_CHECK = ("Waiting for HTTP-01 challenge propagation: failed to perform self check GET"
              " request 'http://api.example.com/.well-known/acme-challenge/KWL27vKGE5Ij35Cb':"
              ' Get "http://api.example.com/.well-known/acme-challenge/KWL27vKGE5Ij35Cb": ')


@pytest.mark.parametrize(("state", "expected"), [
    # The self check cannot resolve the name: cert-manager#1768 (k3s, Traefik), #3378
    # ("dial tcp: lookup echo10.misteruly.th on 169.254.25.10:53: no such host")
    (issuance(cert_ready=NOT_YET, request=WAITING, challenge=("pending", SELF_CHECK
              + "dial tcp: lookup api.example.com on 10.43.0.10:53: no such host")),
     "DNS: api.example.com does not resolve (no such host): point its A record at"
     " 203.0.113.20"),
    # Let's Encrypt finds no record: cert-manager#7636, #6388 (the Challenge's reason as
    # cmctl shows it: "Error accepting authorization: acme: authorization error for ...:
    # 400 urn:ietf:params:acme:error:dns: DNS problem: NXDOMAIN looking up ...")
    (issuance(cert_ready=NOT_YET, request=WAITING, order=("invalid", ""), challenge=(
        "invalid", "Error accepting authorization: acme: authorization error for"
        " api.example.com: 400 urn:ietf:params:acme:error:dns: DNS problem: NXDOMAIN looking"
        " up A for api.example.com - check that a DNS record exists for this domain")),
     "DNS: api.example.com does not resolve (no such host): point its A record at"
     " 203.0.113.20"),
    # The name resolves to another host: the self check dials it (cert-manager#4600:
    # "dial tcp 20.90.136.203:80: connect: connection refused")
    (issuance(cert_ready=NOT_YET, request=WAITING, challenge=("pending", SELF_CHECK
              + "dial tcp 20.90.136.203:80: connect: connection refused")),
     "DNS: api.example.com points at 20.90.136.203, not this host (203.0.113.20): fix its"
     " A record"),
    # ...the same refusal from our own address: port 80 does not reach Traefik
    (issuance(cert_ready=NOT_YET, request=WAITING, challenge=("pending", SELF_CHECK
              + "dial tcp 203.0.113.20:80: connect: connection refused")),
     "HTTP-01 unreachable: GET http://api.example.com/.well-known/acme-challenge/...:"
     " connection refused at 203.0.113.20 (port 80 of this host must reach Traefik: UFW"
     " allows 80, Traefik's web entry point)"),
    # The self check times out: cert-manager#7757, #3238 ("context deadline exceeded
    # (Client.Timeout exceeded while awaiting headers)")
    (issuance(cert_ready=NOT_YET, request=WAITING, challenge=("pending", SELF_CHECK
              + "context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
     "HTTP-01 unreachable: GET http://api.example.com/.well-known/acme-challenge/...:"
     " context deadline exceeded (port 80 of this host must reach Traefik: UFW allows 80,"
     " Traefik's web entry point)"),
    # Let's Encrypt cannot connect: cert-manager#7338, MicrosoftDocs/azure-docs#92888
    # ("400 urn:ietf:params:acme:error:connection: IP: Fetching http://.../.well-known/
    # acme-challenge/...: Timeout during connect (likely firewall problem)")
    (issuance(cert_ready=NOT_YET, request=WAITING, order=("invalid", ""), challenge=(
        "invalid", "Error accepting authorization: acme: authorization error for"
        " api.example.com: 400 urn:ietf:params:acme:error:connection: 203.0.113.20: Fetching"
        " http://api.example.com/.well-known/acme-challenge/pTuOl9IU-pPK-fzz7EMa7AQIuj8q:"
        " Timeout during connect (likely firewall problem)")),
     "HTTP-01 unreachable: GET http://api.example.com/.well-known/acme-challenge/...:"
     " timeout during connect at 203.0.113.20 (port 80 of this host must reach Traefik:"
     " UFW allows 80, Traefik's web entry point)"),
    # The solver answers, but not with the token: cert-manager#3564 ("wrong status code
    # '404', expected '200'")
    (issuance(cert_ready=NOT_YET, request=WAITING, challenge=("pending", "Waiting for HTTP-01"
              " challenge propagation: wrong status code '404', expected '200'")),
     "HTTP-01 not served: GET http://api.example.com/.well-known/acme-challenge/...:"
     " wrong status code '404' (Traefik answers port 80 but does not route the solver's"
     " Ingress to it)"),
    # Rate limited (cert-manager#3603: the CertificateRequest's Ready message)
    (issuance(cert_ready=NOT_YET, request=(
        'Failed to wait for order resource "api-gateway-tls-1-3546283291" to become ready:'
        ' order is in "errored" state: Failed to create Order: 429'
        " urn:ietf:params:acme:error:rateLimited: Error creating new order :: too many new"
        " orders recently: see https://letsencrypt.org/docs/rate-limits/"),
        order=("errored", "Failed to create Order: 429 urn:ietf:params:acme:error:rateLimited:"
               " Error creating new order :: too many new orders recently: see"
               " https://letsencrypt.org/docs/rate-limits/")),
     "Let's Encrypt's rate limit: too many new orders recently: wait, and try with"
     " letsencrypt-staging meanwhile"),
    # ... with the time it lifts (argoproj/argo-cd#10697 quotes the message)
    (issuance(cert_ready=NOT_YET, request=(
        "The certificate request has failed to complete and will be retried: Failed to wait"
        ' for order resource "api-gateway-tls-1-3546283291" to become ready: order is in'
        ' "errored" state: Failed to create Order: 429 urn:ietf:params:acme:error:rateLimited:'
        " Error creating new order :: too many certificates (5) already issued for this exact"
        " set of domains in the last 168 hours: api.example.com, retry after"
        " 2026-01-06T01:29:08Z: see https://letsencrypt.org/docs/duplicate-certificate-limit/"
    )), "Let's Encrypt's rate limit: too many certificates (5) already issued for this exact"
        " set of domains in the last 168 hours (retry after 2026-01-06T01:29:08Z): wait, and"
        " try with letsencrypt-staging meanwhile"),
    # Still on its way: cert-manager#3230 (Certificate "Issuing certificate as Secret does
    # not exist", request "Waiting on certificate issuance from order ...")
    (issuance(cert_ready=NOT_YET, request=WAITING, challenge=("pending", "")), WAITING),
    (issuance(cert_ready=NOT_YET), "Issuing certificate as Secret does not exist"),
    # From the staging issuer: the failure, and that browsers will not trust it anyway
    (issuance(cert_ready=NOT_YET, issuer="letsencrypt-staging", request=WAITING,
              challenge=("pending", SELF_CHECK + "dial tcp: lookup api.example.com on"
                         " 10.43.0.10:53: no such host")),
     "DNS: api.example.com does not resolve (no such host): point its A record at"
     " 203.0.113.20; issuer letsencrypt-staging: browsers will not trust it"),
    # Ready, but from staging while the inventory asks for prod: being issued again
    (issuance(cert_ready=ready("True", "Ready", "Certificate is up to date and has not"
                               " expired"), issuer="letsencrypt-staging"),
     "issued by letsencrypt-staging, not letsencrypt-prod (inventory certs.issuer):"
     " cert-manager issues it again"),
    (Issuance(()), "cert-manager has not made it from the Ingress yet (cert-manager running?"
                   " inv ingress.certs)"),
    (Issuance(missing_api='error: the server doesn\'t have a resource type "certificate"'),
     "cert-manager's API is not there (no Certificate kind): run inv ingress.certs"),
])
def test_why_a_certificate_is_not_ready(state: Issuance, expected: str) -> None:
    assert cause(state, NAME, HOSTS, OURS, "letsencrypt-prod") == expected


def test_a_ready_certificate_from_the_wanted_issuer_needs_nothing() -> None:
    up = ready("True", "Ready", "Certificate is up to date and has not expired")
    assert cause(issuance(cert_ready=up), NAME, HOSTS, OURS, "letsencrypt-prod") is None
    staged = issuance(cert_ready=up, issuer="letsencrypt-staging")
    assert cause(staged, NAME, HOSTS, OURS, "letsencrypt-staging") is None


def test_a_name_that_resolves_elsewhere_needs_our_address_to_tell() -> None:
    state = issuance(cert_ready=NOT_YET, request=WAITING, challenge=("pending", SELF_CHECK
                     + "dial tcp 20.90.136.203:80: connect: connection refused"))
    assert cause(state, NAME, HOSTS, ["vps.example.net"], "letsencrypt-prod") == (
        "HTTP-01 unreachable: GET http://api.example.com/.well-known/acme-challenge/...:"
        " connection refused at 20.90.136.203 (port 80 of this host must reach Traefik: UFW"
        " allows 80, Traefik's web entry point)")


def test_the_step_verifies_in_one_line_and_names_staging() -> None:
    cert = layer()[3]
    not_ready = issuance(cert_ready=NOT_YET, request=WAITING, challenge=(
        "pending", SELF_CHECK + "dial tcp: lookup api.example.com on 10.43.0.10:53: no such"
                                " host"))
    raw = Raw(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(not_ready.items)}), 0)
    assert cert.verify(Facts({cert.fact.key: raw})) == [
        "Certificate app/api-gateway-tls is not Ready: DNS: api.example.com does not resolve"
        " (no such host): point its A record at 203.0.113.20"]
    staging = certificates.CertificateStep(TOOLS, "app", [(NAME, HOSTS)], "letsencrypt-staging",
                                           OURS)
    assert staging.name == ("apps: certificate for api.example.com Ready (letsencrypt-staging:"
                            " browsers will not trust it)")


def test_reading_the_certificates_fails_in_one_line_when_the_api_does() -> None:
    cert = layer()[3]
    raw = Raw("", 1, "The connection to the server 127.0.0.1:39113 was refused - did you"
                     " specify the right host or port?\n")
    with pytest.raises(UserError, match=r"^reading the certificates in app: the Kubernetes API"
                                        r" is unreachable"):
        cert.plan(Facts({cert.fact.key: raw}))


def test_deploy_reads_the_secrets_first_and_plan_mode_goes_on_without_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from tasks.engine.report import Reporter
    from tasks.secrets.store import SecretStore

    class NoSecrets:
        def documents(self, name: str) -> list[dict[str, Any]]:
            raise UserError(f"secrets/{name}.sops.yaml: missing: run inv secrets.init")

    monkeypatch.setattr(SecretStore, "open", classmethod(lambda cls, loaded: NoSecrets()))
    ran: list[Any] = []
    monkeypatch.setattr(apps, "run", lambda s, secrets: ran.append(secrets) or True)
    s = session()
    with pytest.raises(UserError, match=r"^secrets/secret-app.sops.yaml: missing"):
        apps.deploy(s)  # before anything connects
    assert ran == []
    out = io.StringIO()
    s.check, s.reporter = True, Reporter(out)
    assert apps.deploy(s)
    assert ran == [None]
    assert " ".join(out.getvalue().split()) == (
        "apps would apply the apps' Secrets once they exist: secrets/secret-app.sops.yaml:"
        " missing: run inv secrets.init")
