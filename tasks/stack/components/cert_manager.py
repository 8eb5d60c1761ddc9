"""cert-manager (spec §4): the jetstack chart at the pinned version and two ClusterIssuers.

``ingress.certs`` installs the Release, waits for the webhook, then applies the
ClusterIssuers (their CRDs come with the chart: ``installCRDs: true``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.stack.render import Bundle, Release, manifest_documents, values_file

NAME = "cert_manager"
NAMESPACE = "cert-manager"
REPO_NAME = "jetstack"
REPO_URL = "https://charts.jetstack.io"

# spec §4: the ACME directory of each ClusterIssuer.
ACME_SERVERS = {
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "letsencrypt-prod": "https://acme-v02.api.letsencrypt.org/directory",
}
INGRESS_CLASS = "traefik"


def render(ctx: Mapping[str, Any]) -> Bundle:
    source, values = values_file("cert-manager", ctx)
    release = Release(name="cert-manager", namespace=NAMESPACE, repo_name=REPO_NAME,
                      repo_url=REPO_URL, chart="cert-manager",
                      version=str(ctx["versions"]["cert_manager"]),
                      values_source=source, values=values)
    return Bundle(documents=manifest_documents("cert-manager", ctx), releases=[release])


def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """The issuers and values the spec names: ACME URLs, e-mail, HTTP-01 via traefik."""
    errors: list[str] = []
    issuers = {d.name: d for d in bundle.documents if d.kind == "ClusterIssuer"}
    for name in sorted(set(ACME_SERVERS) - set(issuers)):
        errors.append(f"manifests/cert-manager: ClusterIssuer {name}: missing (spec §4)")
    for name, doc in sorted(issuers.items()):
        acme = (doc.obj.get("spec") or {}).get("acme") or {}
        want = ACME_SERVERS.get(name)
        if want and acme.get("server") != want:
            errors.append(f"{doc.label}: spec.acme.server: must be {want}, got"
                          f" {acme.get('server')}")
        if acme.get("email") != ctx["acme_email"]:
            errors.append(f"{doc.label}: spec.acme.email: must be the inventory's"
                          f" acme_email {ctx['acme_email']}, got {acme.get('email')}")
        solvers = acme.get("solvers") or []
        classes = [((s.get("http01") or {}).get("ingress") or {}).get("ingressClassName")
                   for s in solvers if isinstance(s, dict)]
        if not classes or any(c != INGRESS_CLASS for c in classes):
            errors.append(f"{doc.label}: spec.acme.solvers: every solver must be http01"
                          f" with ingress.ingressClassName {INGRESS_CLASS}, got {classes}")
    for rel in bundle.releases:
        if rel.values.get("installCRDs") is not True:
            errors.append(f"{rel.values_source}: Release {rel.name}: installCRDs: must be"
                          " true (chart v1.13 installs the CRDs only then)")
        if rel.version != ctx["versions"]["cert_manager"]:
            errors.append(f"{rel.values_source}: Release {rel.name}: version: must be"
                          f" {ctx['versions']['cert_manager']}, got {rel.version}")
    return errors
