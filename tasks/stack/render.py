"""Rendering the stack: every object, chart release and host file the deploy applies.

Each component (``tasks/stack/components/<name>.py``) turns the template context into a
:class:`Bundle`. Tasks that deploy a component only render its bundle and apply it;
``inv validate`` renders all bundles and checks every object; the GitOps layout is
written from the same bundles. One source of truth, no copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT
from tasks.stack.template import render

MANIFESTS = REPO_ROOT / "manifests"
HELM_VALUES = REPO_ROOT / "helm-values"


@dataclass(frozen=True)
class Document:
    """One Kubernetes object and the repository file it came from."""

    source: str
    obj: dict[str, Any]

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = (self.obj.get("metadata") or {}).get("namespace")
        return str(ns) if ns else None

    @property
    def label(self) -> str:
        """How errors name the object: ``manifests/kafka/topics.yaml: KafkaTopic x``."""
        return f"{self.source}: {self.kind} {self.name}"


@dataclass(frozen=True)
class Release:
    """An upstream Helm chart installed at a pinned version with our values file."""

    name: str
    namespace: str
    repo_name: str
    repo_url: str
    chart: str
    version: str
    values_source: str
    values: dict[str, Any]


@dataclass(frozen=True)
class HostFile:
    """A file installed on the hosts (the K3s config, admission and audit policies)."""

    path: str
    content: str
    source: str
    mode: str = "0600"


@dataclass
class Bundle:
    """What one component renders."""

    documents: list[Document] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    host_files: list[HostFile] = field(default_factory=list)


def of_kind(docs: Iterable[Document], kind: str, group: str | None = None) -> list[Document]:
    """The documents of ``kind`` (and API ``group``, when given), in order."""
    return [d for d in docs if d.kind == kind
            and (group is None or d.api_version.startswith(f"{group}/"))]


def dig(obj: Any, *keys: str | int) -> Any:
    """The value under ``keys`` in nested mappings/lists, or None when any is missing.

    Keys are used as they are (``"strimzi.io/cluster"`` is one label key); see
    :func:`at` for dotted paths.
    """
    for key in keys:
        if isinstance(obj, Mapping) and isinstance(key, str):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def at(obj: Any, dotted: str) -> Any:
    """``at(values, "prometheus.prometheusSpec.retention")``: :func:`dig` by a dotted path."""
    return dig(obj, *dotted.split("."))


class Component(Protocol):
    name: str

    def render(self, ctx: Mapping[str, Any]) -> Bundle: ...


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def render_text(path: Path, ctx: Mapping[str, Any]) -> str:
    return render(path.read_text(), ctx, relative(path))


def parse_documents(text: str, source: str, loader: type[Any] = yaml.SafeLoader
                    ) -> list[Document]:
    """The objects of a YAML stream (``loader``: a safe loader, e.g. a faster one)."""
    try:
        objs = [o for o in yaml.load_all(text, loader) if o is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{source}{where}: invalid YAML after rendering:"
                        f" {getattr(exc, 'problem', exc)}") from None
    for obj in objs:
        if not isinstance(obj, dict):
            raise UserError(f"{source}: expected Kubernetes objects (mappings), got"
                            f" {type(obj).__name__}")
    return [Document(source, obj) for obj in objs]


def manifest_documents(subdir: str, ctx: Mapping[str, Any]) -> list[Document]:
    """Every ``manifests/<subdir>/*.yaml`` rendered and parsed, in file-name order."""
    docs: list[Document] = []
    for path in sorted((MANIFESTS / subdir).glob("*.yaml")):
        docs += parse_documents(render_text(path, ctx), relative(path))
    return docs


def values_file(name: str, ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``helm-values/<name>.yaml`` rendered: (repo-relative path, values)."""
    path = HELM_VALUES / f"{name}.yaml"
    source = relative(path)
    data = yaml.safe_load(render_text(path, ctx)) or {}
    if not isinstance(data, dict):
        raise UserError(f"{source}: Helm values must be a mapping")
    return source, data
