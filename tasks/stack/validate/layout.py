"""The GitOps layout as Flux will read it: every file applied, every reference resolved.

Objects copied unchanged from a component's bundle were validated with the bundle; the
layout's own objects (Flux Kustomizations, HelmRepositories, HelmReleases) get the same
schema checks here, and the layout as a whole must hold together:

- every file stays inside the output directory;
- each ``kustomization.yaml`` lists files that exist, and every YAML file of its
  directory (Flux applies only what it lists);
- each Flux Kustomization's ``spec.path`` is a directory of the layout, its
  ``sourceRef`` and ``dependsOn`` name objects of the layout, without a cycle;
- every file of objects is applied by exactly one Flux Kustomization;
- each HelmRelease's chart source exists and its ``targetNamespace`` is created;
- no object twice, and every namespace used is created in the layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import yaml

from tasks.stack.render import Document
from tasks.stack.validate import objects

FLUX_KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io", "Kustomization")
HELM_RELEASE = ("helm.toolkit.fluxcd.io", "HelmRelease")
KUSTOMIZE_FILE = "kustomization.yaml"


def _group_kind(doc: Document) -> tuple[str, str]:
    return doc.api_version.rpartition("/")[0], doc.kind


def _dir(path: str) -> str:
    return str(PurePosixPath(path).parent)


def _norm(path: str) -> str:
    parts = [p for p in PurePosixPath(path).parts if p not in (".", "/")]
    return "/".join(parts)


def _resources(files: Mapping[str, str], path: str) -> list[str] | None:
    try:
        body = yaml.safe_load(files[path]) or {}
    except yaml.YAMLError:
        return None
    return [str(r) for r in body.get("resources") or []] if isinstance(body, dict) else None


def path_problems(files: Mapping[str, str]) -> list[str]:
    """Files the layout would write outside its output directory."""
    return [f"gitops:{path}: the layout writes outside its directory (check gitops.path)"
            for path in files
            if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts]


def kustomize_problems(files: Mapping[str, str]) -> list[str]:
    """Each kustomization.yaml against the files of its directory."""
    escaping = path_problems(files)
    if escaping:
        return escaping  # the rest would only be the same problem, file by file
    out = []
    for path in files:
        if PurePosixPath(path).name != KUSTOMIZE_FILE:
            continue
        here = _dir(path)
        listed = _resources(files, path)
        if listed is None:
            out.append(f"gitops:{path}: not a kustomization (invalid YAML or not a mapping)")
            continue
        for res in listed:
            target = _norm(f"{here}/{res}")
            if target not in files and f"{target}/{KUSTOMIZE_FILE}" not in files:
                out.append(f"gitops:{path}: resources: {res} does not exist")
        names = {_norm(f"{here}/{r}") for r in listed}
        for other in files:
            if (_dir(other) == here and other != path and other.endswith(".yaml")
                    and other not in names):
                out.append(f"gitops:{other}: not listed in {path} (Flux would not apply it)")
    return out


def applied_files(files: Mapping[str, str], directory: str) -> set[str]:
    """The files a Flux Kustomization with ``spec.path: directory`` applies."""
    own = f"{directory}/{KUSTOMIZE_FILE}"
    if own not in files:  # Flux generates a kustomization of every YAML file below
        return {f for f in files if f.startswith(f"{directory}/") and f.endswith(".yaml")}
    out = {own}
    for res in _resources(files, own) or []:
        target = _norm(f"{directory}/{res}")
        out |= applied_files(files, target) if target not in files else {target}
    return out


def _ref(doc: Document, ref: Any) -> tuple[str, str, str]:
    ref = ref if isinstance(ref, dict) else {}
    return (str(ref.get("kind", "")), str(ref.get("namespace") or doc.namespace or ""),
            str(ref.get("name", "")))


def _spec(doc: Document) -> dict[str, Any]:
    spec = doc.obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _cycles(deps: Mapping[str, list[str]]) -> list[list[str]]:
    """Each dependsOn cycle, as the path that closes it (``a -> b -> a``)."""
    done: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            found.append([*stack[stack.index(node):], node])
            return
        if node in done:
            return
        for nxt in deps.get(node, []):
            visit(nxt, [*stack, node])
        done.add(node)

    for node in deps:
        visit(node, [])
    return found


def flux_problems(files: Mapping[str, str], docs: list[Document]) -> list[str]:
    """References between the layout's Flux objects, and what they apply."""
    if path_problems(files):
        return []
    out = []
    present = {(d.kind, d.namespace or "", d.name) for d in docs}
    namespaces = {d.name for d in docs if d.kind == "Namespace"} | objects.SYSTEM_NAMESPACES
    dirs = {_dir(f) for f in files} | {str(p) for f in files for p in PurePosixPath(f).parents}
    owner: dict[str, str] = {}
    deps: dict[str, list[str]] = {}
    for doc in docs:
        spec = _spec(doc)
        if _group_kind(doc) == FLUX_KUSTOMIZATION:
            path = _norm(str(spec.get("path", "")))
            if path not in dirs:
                out.append(f"{doc.label}: spec.path: {spec.get('path')} is not a directory"
                           " of the layout")
            for f in sorted(applied_files(files, path)):
                if f in owner:
                    out.append(f"gitops:{f}: applied by both Kustomization {owner[f]} and"
                               f" {doc.name} (each file needs one owner)")
                owner.setdefault(f, doc.name)
            kind, ns, name = _ref(doc, spec.get("sourceRef"))
            if (kind, ns, name) not in present:
                out.append(f"{doc.label}: spec.sourceRef: {kind} {ns}/{name} is not in the"
                           " layout")
            key = f"{doc.namespace}/{doc.name}"
            deps[key] = []
            for i, dep in enumerate(spec.get("dependsOn") or []):
                _, ns, name = _ref(doc, dep)
                deps[key].append(f"{ns}/{name}")
                if ("Kustomization", ns, name) not in present:
                    out.append(f"{doc.label}: spec.dependsOn[{i}]: Kustomization {ns}/{name}"
                               " is not in the layout")
        elif _group_kind(doc) == HELM_RELEASE:
            chart = (spec.get("chart") or {}).get("spec") or {}
            kind, ns, name = _ref(doc, chart.get("sourceRef"))
            if (kind, ns, name) not in present:
                out.append(f"{doc.label}: spec.chart.spec.sourceRef: {kind} {ns}/{name} is"
                           " not in the layout")
            target = spec.get("targetNamespace")
            if target and target not in namespaces:
                out.append(f"{doc.label}: spec.targetNamespace: namespace {target!r} is not"
                           " created in the layout")
    for cycle in _cycles(deps):
        out.append(f"gitops: Kustomization {cycle[0]}: spec.dependsOn: cycle"
                   f" {' -> '.join(cycle)}")
    for source in dict.fromkeys(d.source for d in docs):
        path = source.removeprefix("gitops:")
        if path in files and path not in owner:
            out.append(f"{source}: no Flux Kustomization applies this file")
    return out
