"""Flux: the GitRepository and Kustomization from the inventory, the pinned version."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from platform_ctx import variant

from tasks.stack.components import flux
from tasks.stack.render import Bundle, Document

CTX = variant()


def objects(ctx: dict[str, Any] | None = None) -> dict[str, Document]:
    return {d.kind: d for d in flux.render(ctx or CTX).documents}


def test_git_repository_has_the_spec_values() -> None:
    repo = objects()["GitRepository"]
    assert repo.api_version == "source.toolkit.fluxcd.io/v1"
    assert (repo.namespace, repo.name) == ("flux-system", "flux-system")
    assert repo.obj["spec"] == {
        "interval": "1m",
        "url": "ssh://git@github.com/team-mercurious/k3s-gitops",
        "ref": {"branch": "main"},
        "secretRef": {"name": "flux-system"},
    }


def test_kustomization_has_the_spec_values() -> None:
    kust = objects()["Kustomization"]
    assert kust.api_version == "kustomize.toolkit.fluxcd.io/v1"
    assert (kust.namespace, kust.name) == ("flux-system", "flux-system")
    spec = kust.obj["spec"]
    assert spec["interval"] == "10m"
    assert spec["path"] == "./clusters/vps"
    assert spec["prune"] is True
    assert spec["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
    assert spec["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}


def test_every_object_records_the_flux_version() -> None:
    docs = objects()
    assert sorted(docs) == ["GitRepository", "Kustomization", "Namespace"]
    for doc in docs.values():
        assert doc.obj["metadata"]["labels"]["app.kubernetes.io/version"] == "2.6.4"
    ns = docs["Namespace"].obj["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "restricted"


def test_objects_follow_the_inventory() -> None:
    ctx = variant(versions={"flux": "2.7.0"}, gitops={
        "repository": "https://git.example.org/ops/cluster", "branch": "prod",
        "path": "./clusters/other", "interval": "5m", "reconcile_interval": "1h"})
    docs = objects(ctx)
    repo, kust = docs["GitRepository"].obj["spec"], docs["Kustomization"].obj["spec"]
    assert (repo["url"], repo["ref"], repo["interval"]) == (
        "https://git.example.org/ops/cluster", {"branch": "prod"}, "5m")
    assert (kust["path"], kust["interval"]) == ("./clusters/other", "1h")
    assert docs["Namespace"].obj["metadata"]["labels"]["app.kubernetes.io/version"] == "2.7.0"
    assert flux.checks(flux.render(ctx), ctx) == []


def test_default_render_passes_the_checks() -> None:
    assert flux.checks(flux.render(CTX), CTX) == []


REPO = "manifests/flux/sync.yaml: GitRepository flux-system"
KUST = "manifests/flux/sync.yaml: Kustomization flux-system"


def broken(kind: str, change: Any) -> list[str]:
    docs = []
    for doc in flux.render(CTX).documents:
        if doc.kind == kind:
            obj = copy.deepcopy(doc.obj)
            change(obj)
            doc = Document(doc.source, obj)
        docs.append(doc)
    return flux.checks(Bundle(documents=docs), CTX)


@pytest.mark.parametrize(("kind", "change", "error"), [
    ("GitRepository", lambda o: o["spec"].__setitem__("interval", "5m"),
     f"{REPO}: spec.interval: must be '1m', got '5m'"),
    ("GitRepository", lambda o: o["spec"]["ref"].__setitem__("branch", "master"),
     f"{REPO}: spec.ref.branch: must be 'main', got 'master'"),
    ("Kustomization", lambda o: o["spec"].__setitem__("interval", "1m"),
     f"{KUST}: spec.interval: must be '10m', got '1m'"),
    ("Kustomization", lambda o: o["spec"].pop("decryption"),
     f"{KUST}: spec.decryption.provider: must be 'sops', got None"),
    ("Kustomization", lambda o: o["spec"]["decryption"]["secretRef"].__setitem__("name", "age"),
     f"{KUST}: spec.decryption.secretRef.name: must be 'sops-age', got 'age'"),
    ("Kustomization", lambda o: o["spec"].__setitem__("path", "./clusters/prod"),
     f"{KUST}: spec.path: must be './clusters/vps', got './clusters/prod'"),
    ("Kustomization", lambda o: o["metadata"]["labels"].pop("app.kubernetes.io/version"),
     f"{KUST}: metadata.labels.app.kubernetes.io/version: must be the Flux release '2.6.4',"
     " got None"),
])
def test_broken_objects_are_caught(kind: str, change: Any, error: str) -> None:
    assert error in broken(kind, change)


def test_missing_object_is_caught() -> None:
    docs = [d for d in flux.render(CTX).documents if d.kind != "GitRepository"]
    assert flux.checks(Bundle(documents=docs), CTX) == [
        "manifests/flux: GitRepository flux-system: missing (spec §5)"]


CONTROLLERS = ("sourceController", "kustomizeController", "helmController",
               "notificationController", "imageReflectionController",
               "imageAutomationController")


def test_every_flux_controller_and_the_check_job_have_requests_and_limits() -> None:
    import yaml

    from tasks.repo import REPO_ROOT

    values = yaml.safe_load((REPO_ROOT / "helm-values/flux2.yaml").read_text())
    for name in CONTROLLERS:
        assert values[name]["resources"] == {"requests": {"cpu": "100m", "memory": "64Mi"},
                                             "limits": {"cpu": "1000m", "memory": "1Gi"}}, name
    assert values["cli"]["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                          "limits": {"cpu": "500m", "memory": "256Mi"}}
