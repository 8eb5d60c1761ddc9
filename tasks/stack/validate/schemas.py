"""Finding and caching the JSON schema of every kind we emit.

Core kinds (group ``""``, a group without a dot such as ``apps``, or ``*.k8s.io``) are
validated strictly against Kubernetes 1.33: the ``-local-strict`` schemas shipped by PyPI
``kubernetes-validate`` refuse fields the API does not know. Custom kinds are validated
against ``<dir>/<group>/<kind lowercase>_<version>.json`` from the first of
``$STACK_CRD_SCHEMAS``, ``.cache/crd-schemas/`` and ``../shared/schemas/crds/`` that has
it (the layout of the datreeio/CRDs-catalog repository), unless a schema of that file
name was given inline (taken from the CRDs of the pulled upstream charts, exact for the
pinned versions: :mod:`tasks.stack.upstream`); their top level and
``metadata`` are made strict too (``metadata`` against the core ObjectMeta). Compiled
validators are cached per (apiVersion, kind).
"""

from __future__ import annotations

import importlib.resources
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]
from referencing import Registry, Resource

from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT

KUBERNETES = "1.33"
ENV = "STACK_CRD_SCHEMAS"
CACHE_DIR = REPO_ROOT / ".cache" / "crd-schemas"
SHARED_DIR = REPO_ROOT.parent / "shared" / "schemas" / "crds"
_DEFS = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = f"{_DEFS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
FILL_HINT = ("fill the cache: `kubectl get crd -o json | python -m tasks.stack.validate.crds`"
             " (or pipe a chart's CRD YAML), or copy {file} from the datreeio/CRDs-catalog"
             " repository into .cache/crd-schemas/")


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` -> (``apps``, ``v1``); ``v1`` -> (``""``, ``v1``)."""
    group, _, version = api_version.rpartition("/")
    return group, version


def is_core_group(group: str) -> bool:
    """Groups served by Kubernetes itself (not by a CRD)."""
    return group == "" or "." not in group or group.endswith(".k8s.io")


def crd_dirs() -> list[tuple[str, Path]]:
    """(how to name it, path) of every schema directory, in lookup order."""
    dirs: list[tuple[str, Path]] = []
    for entry in filter(None, os.environ.get(ENV, "").split(os.pathsep)):
        dirs.append((f"${ENV} ({entry})", Path(entry)))
    dirs.append((".cache/crd-schemas", CACHE_DIR))
    dirs.append(("../shared/schemas/crds", SHARED_DIR))
    return dirs


@dataclass(frozen=True)
class Lookup:
    """The schema of one (apiVersion, kind): a validator and its source, or a problem."""

    validator: Draft202012Validator | None
    source: str
    problem: str | None = None
    missing_file: str | None = None


def _core_dir() -> Path:
    try:
        root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    except ModuleNotFoundError:
        raise UserError("kubernetes-validate is not installed: pip install"
                        " kubernetes-validate (it ships the Kubernetes schemas)") from None
    path = Path(str(root)) / f"v{KUBERNETES}.0-local-strict"
    if not path.is_dir():
        raise UserError(f"kubernetes-validate has no Kubernetes {KUBERNETES} schemas"
                        f" ({path} missing): pip install -U kubernetes-validate")
    return path


class SchemaStore:
    """Looks schemas up once and keeps the compiled validators."""

    def __init__(self, dirs: list[tuple[str, Path]] | None = None,
                 inline: Mapping[str, tuple[str, dict[str, Any]]] | None = None) -> None:
        self.dirs = crd_dirs() if dirs is None else dirs
        #: ``<group>/<kind>_<version>.json`` -> (where it comes from, schema): looked up
        #: before the directories
        self.inline = dict(inline or {})
        self._cache: dict[tuple[str, str], Lookup] = {}

    def with_inline(self, inline: Mapping[str, tuple[str, dict[str, Any]]]) -> SchemaStore:
        """A store over the same directories that looks ``inline`` schemas up first."""
        return SchemaStore(self.dirs, {**self.inline, **inline})

    @cached_property
    def core_dir(self) -> Path:
        return _core_dir()

    @cached_property
    def core_files(self) -> frozenset[str]:
        return frozenset(p.name for p in self.core_dir.glob("*.json"))

    @cached_property
    def registry(self) -> Registry[Any]:
        defs = json.loads((self.core_dir / "_definitions.json").read_text())
        return Resource.from_contents(defs) @ Registry()

    def lookup(self, api_version: str, kind: str) -> Lookup:
        key = (api_version, kind)
        if key not in self._cache:
            group, version = split_api_version(api_version)
            if is_core_group(group):
                self._cache[key] = self._core(group, version, kind)
            else:
                self._cache[key] = self._custom(group, version, kind)
        return self._cache[key]

    def validate(self, obj: dict[str, Any]) -> tuple[Lookup, list[Any]]:
        """The lookup and the schema errors of one object (sorted by path)."""
        found = self.lookup(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if found.validator is None:
            return found, []
        errors = sorted(found.validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
        return found, errors

    # core -----------------------------------------------------------------------------

    def _core(self, group: str, version: str, kind: str) -> Lookup:
        prefix = group.split(".")[0]
        name = f"{kind.lower()}-{prefix + '-' if prefix else ''}{version}.json"
        schema = self._core_schema(name, kind)
        if schema is not None:
            validator = Draft202012Validator(schema, registry=self.registry)
            return Lookup(validator, f"kubernetes {KUBERNETES} (kubernetes-validate)")
        served = sorted(self._served_as(kind))
        where = f"; {kind} is served as {', '.join(served)}" if served else ""
        api = f"{group}/{version}" if group else version
        return Lookup(None, "", f"unknown kind: {api} {kind} is not a Kubernetes"
                                f" {KUBERNETES} API{where}")

    def _core_schema(self, name: str, kind: str) -> dict[str, Any] | None:
        if name not in self.core_files:
            return None
        schema: dict[str, Any] = json.loads((self.core_dir / name).read_text())
        # The package also ships schemas of sub-objects (container-v1.json): only a
        # schema whose `kind` is this kind describes a top-level object.
        kinds = (schema.get("properties", {}).get("kind") or {}).get("enum") or []
        return schema if kind in kinds else None

    def _served_as(self, kind: str) -> list[str]:
        out = []
        for name in self.core_files:
            stem = name.removesuffix(".json")
            head, _, rest = stem.partition("-")
            if head != kind.lower():
                continue
            schema = self._core_schema(name, kind)
            if schema is not None:
                enum = (schema.get("properties", {}).get("apiVersion") or {}).get("enum")
                out.append(str(enum[0]) if enum else rest)
        return out

    # custom ---------------------------------------------------------------------------

    def _custom(self, group: str, version: str, kind: str) -> Lookup:
        file = f"{group}/{kind.lower()}_{version}.json"
        if file in self.inline:
            source, schema = self.inline[file]
            return self._compile_schema(schema, source)
        for label, root in self.dirs:
            path = root / file
            if path.is_file():
                return self._compile(path, f"{label}/{file}")
        return Lookup(None, "", self._why_missing(group, version, kind, file), file)

    def _compile(self, path: Path, source: str) -> Lookup:
        try:
            schema = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            return Lookup(None, source, f"schema {source} is unreadable: {exc}")
        return self._compile_schema(schema, source)

    def _compile_schema(self, schema: Any, source: str) -> Lookup:
        if not isinstance(schema, dict):
            return Lookup(None, source, f"schema {source} is not a JSON object")
        props = dict(schema.get("properties") or {})
        props["metadata"] = {"$ref": OBJECT_META}
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        strict = {**schema, "properties": props}
        strict.setdefault("additionalProperties", False)
        return Lookup(Draft202012Validator(strict, registry=self.registry), source)

    def _why_missing(self, group: str, version: str, kind: str, file: str) -> str:
        kinds: dict[str, set[str]] = {}
        stems = [p.stem for _, root in self.dirs for p in (root / group).glob("*_*.json")]
        stems += [f.removesuffix(".json").split("/", 1)[1] for f in self.inline
                  if f.startswith(f"{group}/")]
        for stem in stems:
            k, _, v = stem.rpartition("_")
            kinds.setdefault(k, set()).add(v)
        if kind.lower() in kinds:
            have = ", ".join(sorted(kinds[kind.lower()]))
            return (f"unknown kind: {group} has no version {version} of {kind}"
                    f" (schemas exist for {have})")
        if kinds:
            return (f"unknown kind: {kind} is not a kind of {group}"
                    f" (known: {', '.join(sorted(kinds))})")
        looked = ", ".join(label for label, _ in self.dirs)
        return (f"no JSON schema {file} in {looked}: " + FILL_HINT.format(file=file))
