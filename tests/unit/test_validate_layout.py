"""The GitOps layout as Flux reads it: files listed, paths, references, owners."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tasks.stack.render import Document
from tasks.stack.validate import layout

FLUX = "kustomize.toolkit.fluxcd.io/v1"


def ks(name: str, path: str, depends: list[str] | None = None,
       source: str = "flux-system") -> dict[str, Any]:
    spec: dict[str, Any] = {"path": path, "sourceRef": {"kind": "GitRepository",
                                                        "name": source}}
    if depends:
        spec["dependsOn"] = [{"name": d} for d in depends]
    return {"apiVersion": FLUX, "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "flux-system"}, "spec": spec}


def obj(api: str, kind: str, name: str, ns: str | None, **spec: Any) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": api, "kind": kind, "metadata": meta, **({"spec": spec} if spec
                                                                 else {})}


def valid() -> tuple[dict[str, str], list[Document]]:
    files = {
        "c/kustomization.yaml": "resources: [flux-system]\n",
        "c/flux-system/kustomization.yaml": "resources: [sync.yaml, layers.yaml, repos.yaml]\n",
        "c/flux-system/sync.yaml": "", "c/flux-system/layers.yaml": "",
        "c/flux-system/repos.yaml": "",
        "c/namespaces/kustomization.yaml": "resources: [app.yaml]\n",
        "c/namespaces/app.yaml": "",
        "c/apps/kustomization.yaml": "resources: [cm.yaml, release.yaml]\n",
        "c/apps/cm.yaml": "", "c/apps/release.yaml": "",
    }
    docs = [
        Document("gitops:c/flux-system/sync.yaml",
                 obj("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system",
                     "flux-system")),
        Document("gitops:c/flux-system/sync.yaml", ks("flux-system", "./c")),
        Document("gitops:c/flux-system/layers.yaml", ks("namespaces", "./c/namespaces")),
        Document("gitops:c/flux-system/layers.yaml", ks("apps", "./c/apps", ["namespaces"])),
        Document("gitops:c/flux-system/repos.yaml",
                 obj("source.toolkit.fluxcd.io/v1", "HelmRepository", "repo", "flux-system")),
        Document("gitops:c/namespaces/app.yaml", obj("v1", "Namespace", "app", None)),
        Document("gitops:c/apps/cm.yaml", obj("v1", "ConfigMap", "cm", "app")),
        Document("gitops:c/apps/release.yaml", obj(
            "helm.toolkit.fluxcd.io/v2", "HelmRelease", "rel", "flux-system",
            targetNamespace="app",
            chart={"spec": {"chart": "x", "sourceRef": {"kind": "HelmRepository",
                                                        "name": "repo"}}})),
    ]
    return files, docs


def problems(files: dict[str, str], docs: list[Document]) -> list[str]:
    return layout.kustomize_problems(files) + layout.flux_problems(files, docs)


def test_a_consistent_layout_passes() -> None:
    assert problems(*valid()) == []


def test_applied_files_follow_kustomizations() -> None:
    files, _ = valid()
    assert layout.applied_files(files, "c") == {
        "c/kustomization.yaml", "c/flux-system/kustomization.yaml", "c/flux-system/sync.yaml",
        "c/flux-system/layers.yaml", "c/flux-system/repos.yaml"}
    del files["c/apps/kustomization.yaml"]  # Flux then applies every YAML file below
    assert layout.applied_files(files, "c/apps") == {"c/apps/cm.yaml", "c/apps/release.yaml"}


def change(docs: list[Document], name: str, path: tuple[str, ...], value: Any
           ) -> list[Document]:
    out = []
    for d in docs:
        o = copy.deepcopy(d.obj)
        if d.name == name:
            node = o
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        out.append(Document(d.source, o))
    return out


LAYERS = "gitops:c/flux-system/layers.yaml"


@pytest.mark.parametrize(("what", "expected"), [
    ("missing file", ["gitops:c/apps/kustomization.yaml: resources: cm.yaml does not exist"]),
    ("unlisted file", ["gitops:c/apps/extra.yaml: not listed in c/apps/kustomization.yaml"
                       " (Flux would not apply it)"]),
    ("bad path", [f"{LAYERS}: Kustomization apps: spec.path: ./c/appz is not a directory of"
                  " the layout",
                  "gitops:c/apps/cm.yaml: no Flux Kustomization applies this file",
                  "gitops:c/apps/release.yaml: no Flux Kustomization applies this file"]),
    ("two owners", ["gitops:c/apps/cm.yaml: applied by both Kustomization namespaces and apps"
                    " (each file needs one owner)",
                    "gitops:c/apps/kustomization.yaml: applied by both Kustomization namespaces and"
                    " apps (each file needs one owner)",
                    "gitops:c/apps/release.yaml: applied by both Kustomization namespaces and"
                    " apps (each file needs one owner)",
                    "gitops:c/namespaces/app.yaml: no Flux Kustomization applies this file"]),
    ("unknown dependency", [f"{LAYERS}: Kustomization apps: spec.dependsOn[0]: Kustomization"
                            " flux-system/namepsaces is not in the layout"]),
    ("cycle", ["gitops: Kustomization flux-system/namespaces: spec.dependsOn: cycle"
               " flux-system/namespaces -> flux-system/apps -> flux-system/namespaces"]),
    ("unknown source", [f"{LAYERS}: Kustomization apps: spec.sourceRef: GitRepository"
                        " flux-system/gitops is not in the layout"]),
    ("chart source", ["gitops:c/apps/release.yaml: HelmRelease rel: spec.chart.spec.sourceRef:"
                      " HelmRepository flux-system/repo2 is not in the layout"]),
    ("target namespace", ["gitops:c/apps/release.yaml: HelmRelease rel: spec.targetNamespace:"
                          " namespace 'kafka' is not created in the layout"]),
])
def test_broken_layouts(what: str, expected: list[str]) -> None:
    files, docs = valid()
    if what == "missing file":
        del files["c/apps/cm.yaml"]
        docs = [d for d in docs if d.name != "cm"]
    elif what == "unlisted file":
        files["c/apps/extra.yaml"] = ""
    elif what == "bad path":
        docs = change(docs, "apps", ("spec", "path"), "./c/appz")
    elif what == "two owners":
        docs = change(docs, "namespaces", ("spec", "path"), "./c/apps")
    elif what == "unknown dependency":
        docs = change(docs, "apps", ("spec", "dependsOn"), [{"name": "namepsaces"}])
    elif what == "cycle":
        docs = change(docs, "namespaces", ("spec", "dependsOn"), [{"name": "apps"}])
    elif what == "unknown source":
        docs = change(docs, "apps", ("spec", "sourceRef", "name"), "gitops")
    elif what == "chart source":
        docs = change(docs, "rel", ("spec", "chart", "spec", "sourceRef", "name"), "repo2")
    elif what == "target namespace":
        docs = change(docs, "rel", ("spec", "targetNamespace"), "kafka")
    assert problems(files, docs) == expected


def test_files_outside_the_output_directory() -> None:
    files, docs = valid()
    files["/apps/cm.yaml"] = files.pop("c/apps/cm.yaml")
    files["../x.yaml"] = ""
    assert problems(files, docs) == [
        "gitops:/apps/cm.yaml: the layout writes outside its directory (check gitops.path)",
        "gitops:../x.yaml: the layout writes outside its directory (check gitops.path)"]
