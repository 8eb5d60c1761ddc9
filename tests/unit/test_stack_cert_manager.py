"""cert-manager: pinned release, CRDs, the two ClusterIssuers; broken ones caught."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from platform_ctx import variant

from tasks.stack.components import cert_manager
from tasks.stack.render import Bundle, Document

CTX = variant()
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
PROD = "https://acme-v02.api.letsencrypt.org/directory"


def issuers(ctx: dict[str, Any] | None = None) -> dict[str, Document]:
    return {d.name: d for d in cert_manager.render(ctx or CTX).documents
            if d.kind == "ClusterIssuer"}


def test_release_is_jetstack_at_the_pinned_version_with_crds() -> None:
    [rel] = cert_manager.render(CTX).releases
    assert (rel.name, rel.namespace, rel.chart) == ("cert-manager", "cert-manager",
                                                    "cert-manager")
    assert (rel.repo_name, rel.repo_url) == ("jetstack", "https://charts.jetstack.io")
    assert rel.version == "v1.13.1"
    assert rel.values_source == "helm-values/cert-manager.yaml"
    assert rel.values["installCRDs"] is True
    assert rel.values["prometheus"] == {"enabled": True, "servicemonitor": {"enabled": False}}
    for part in (rel.values, rel.values["webhook"], rel.values["cainjector"],
                 rel.values["startupapicheck"]):
        assert set(part["resources"]) == {"requests", "limits"}


def test_version_follows_the_inventory() -> None:
    [rel] = cert_manager.render(variant(versions={"cert_manager": "v1.13.6"})).releases
    assert rel.version == "v1.13.6"


def test_namespace_is_restricted() -> None:
    [ns] = [d for d in cert_manager.render(CTX).documents if d.kind == "Namespace"]
    assert ns.name == "cert-manager"
    labels = ns.obj["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.33"


def test_cluster_issuers_have_the_spec_urls_and_http01_via_traefik() -> None:
    found = issuers()
    assert sorted(found) == ["letsencrypt-prod", "letsencrypt-staging"]
    assert found["letsencrypt-staging"].obj["spec"]["acme"]["server"] == STAGING
    assert found["letsencrypt-prod"].obj["spec"]["acme"]["server"] == PROD
    for doc in found.values():
        assert doc.api_version == "cert-manager.io/v1"
        acme = doc.obj["spec"]["acme"]
        assert acme["email"] == "ops@example.com"
        assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": "traefik"}}}]
        assert acme["privateKeySecretRef"] == {"name": f"{doc.name}-account-key"}


def test_email_follows_the_inventory() -> None:
    ctx = variant(acme_email="certs@other.example.org")
    assert {d.obj["spec"]["acme"]["email"] for d in issuers(ctx).values()} == {
        "certs@other.example.org"}
    assert cert_manager.checks(cert_manager.render(ctx), ctx) == []


def test_default_render_passes_the_checks() -> None:
    assert cert_manager.checks(cert_manager.render(CTX), CTX) == []


PROD_LABEL = "manifests/cert-manager/clusterissuers.yaml: ClusterIssuer letsencrypt-prod"


def broken_issuer(change: Any) -> list[str]:
    bundle = cert_manager.render(CTX)
    docs = []
    for doc in bundle.documents:
        if doc.name == "letsencrypt-prod":
            obj = copy.deepcopy(doc.obj)
            change(obj["spec"]["acme"])
            doc = Document(doc.source, obj)
        docs.append(doc)
    return cert_manager.checks(Bundle(documents=docs, releases=bundle.releases), CTX)


@pytest.mark.parametrize(("change", "error"), [
    (lambda a: a.__setitem__("server", STAGING),
     f"{PROD_LABEL}: spec.acme.server: must be {PROD}, got {STAGING}"),
    (lambda a: a.__setitem__("email", "admin@example.org"),
     f"{PROD_LABEL}: spec.acme.email: must be the inventory's acme_email ops@example.com,"
     " got admin@example.org"),
    (lambda a: a["solvers"][0]["http01"]["ingress"].__setitem__("ingressClassName", "nginx"),
     f"{PROD_LABEL}: spec.acme.solvers: every solver must be http01 with"
     " ingress.ingressClassName traefik, got ['nginx']"),
    (lambda a: a["solvers"][0]["http01"]["ingress"].__setitem__("class", "traefik")
     or a["solvers"][0]["http01"]["ingress"].pop("ingressClassName"),
     f"{PROD_LABEL}: spec.acme.solvers: every solver must be http01 with"
     " ingress.ingressClassName traefik, got [None]"),
])
def test_broken_issuer_is_caught(change: Any, error: str) -> None:
    assert error in broken_issuer(change)


def test_missing_issuer_and_bad_release_are_caught() -> None:
    bundle = cert_manager.render(CTX)
    [rel] = bundle.releases
    bad = dataclasses.replace(rel, version="v1.14.0",
                              values={**rel.values, "installCRDs": False})
    docs = [d for d in bundle.documents if d.name != "letsencrypt-staging"]
    errors = cert_manager.checks(Bundle(documents=docs, releases=[bad]), CTX)
    assert errors == [
        "manifests/cert-manager: ClusterIssuer letsencrypt-staging: missing (spec §4)",
        "helm-values/cert-manager.yaml: Release cert-manager: installCRDs: must be true"
        " (chart v1.13 installs the CRDs only then)",
        "helm-values/cert-manager.yaml: Release cert-manager: version: must be v1.13.1,"
        " got v1.14.0",
    ]
