"""Flux (spec §5): its namespace, the GitRepository and the Kustomization it reconciles.

``flux.bootstrap`` installs the Flux controllers at ``versions.flux`` (recorded as the
``app.kubernetes.io/version`` label of every object here), creates the Secrets
``flux-system`` (deploy key) and ``sops-age`` (age key), then applies these objects. The
GitOps layout under ``gitops.path`` is written by :mod:`tasks.stack.gitops`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.engine.errors import UserError
from tasks.stack.render import Bundle, Document, Release, at, manifest_documents, values_file

NAME = "flux"
NAMESPACE = "flux-system"
SYNC_NAME = "flux-system"  # the names `flux bootstrap` gives its GitRepository/Kustomization
SOPS_SECRET = "sops-age"  # noqa: S105  (a Secret's name, spec §5/§10)
DEPLOY_KEY_SECRET = "flux-system"  # noqa: S105  (a Secret's name)
VERSION_LABEL = "app.kubernetes.io/version"

# The controllers come from the fluxcd-community flux2 chart (no flux CLI): the chart
# release whose appVersion is the Flux release. 2.16.4 carries Flux 2.6.4 (controllers
# source v1.6.2, kustomize v1.6.1, helm v1.3.0, notification v1.6.0, image-reflector
# v0.35.2, image-automation v0.41.2): fluxcd-community/helm-charts, charts/flux2/Chart.yaml
# at tag flux2-2.16.4 (commit e07cfacf, 2025-08-08; 2.16.3 also carried 2.6.4).
CHART_REPO = ("fluxcd-community", "https://fluxcd-community.github.io/helm-charts")
CHART = "flux2"
CHART_VERSIONS = {"2.6.4": "2.16.4"}  # Flux release -> flux2 chart version


def render(ctx: Mapping[str, Any]) -> Bundle:
    return Bundle(documents=manifest_documents("flux", ctx))


def release(ctx: Mapping[str, Any]) -> Release:
    """The flux2 chart release flux.bootstrap installs (not part of the GitOps layout)."""
    flux_version = str(ctx["versions"]["flux"])
    chart_version = CHART_VERSIONS.get(flux_version)
    if chart_version is None:
        raise UserError(f"versions.flux {flux_version}: no flux2 chart version is known for it"
                        " (tasks/stack/components/flux.py CHART_VERSIONS)")
    source, values = values_file("flux2", ctx)
    return Release(name="flux2", namespace=NAMESPACE, repo_name=CHART_REPO[0],
                   repo_url=CHART_REPO[1], chart=CHART, version=chart_version,
                   values_source=source, values=values)



def _expect(errors: list[str], doc: Document, want: Mapping[str, Any]) -> None:
    for path, value in want.items():
        got = at(doc.obj, path)
        if got != value:
            errors.append(f"{doc.label}: {path}: must be {value!r}, got {got!r}")


def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """The sync objects carry the inventory's gitops settings and the Flux version."""
    gitops = ctx["gitops"]
    errors: list[str] = []
    found = {(d.kind, d.name): d for d in bundle.documents}
    wanted: dict[tuple[str, str], dict[str, Any]] = {
        ("Namespace", NAMESPACE): {},
        ("GitRepository", SYNC_NAME): {
            "metadata.namespace": NAMESPACE,
            "spec.url": gitops["repository"],
            "spec.ref.branch": gitops["branch"],
            "spec.interval": gitops["interval"],
            "spec.secretRef.name": DEPLOY_KEY_SECRET,
        },
        ("Kustomization", SYNC_NAME): {
            "metadata.namespace": NAMESPACE,
            "spec.path": gitops["path"],
            "spec.interval": gitops["reconcile_interval"],
            "spec.prune": True,
            "spec.sourceRef.kind": "GitRepository",
            "spec.sourceRef.name": SYNC_NAME,
            "spec.decryption.provider": "sops",
            "spec.decryption.secretRef.name": SOPS_SECRET,
        },
    }
    for (kind, name), want in wanted.items():
        doc = found.get((kind, name))
        if doc is None:
            errors.append(f"manifests/flux: {kind} {name}: missing (spec §5)")
            continue
        _expect(errors, doc, want)
        version = ((doc.obj.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL)
        if version != ctx["versions"]["flux"]:
            errors.append(f"{doc.label}: metadata.labels.{VERSION_LABEL}: must be the"
                          f" Flux release {ctx['versions']['flux']!r}, got {version!r}")
    return errors
