"""Shared fixtures of the validate tests: one valid object of each kind we emit."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest

from tasks.stack.render import Document, parse_documents
from tasks.stack.validate.schemas import crd_dirs

FIXTURE = Path(__file__).parent / "fixtures" / "validate" / "valid.yaml"
SOURCE = "manifests/test/objects.yaml"
DELETE = object()


@functools.cache
def _parsed() -> tuple[Document, ...]:
    return tuple(parse_documents(FIXTURE.read_text(), SOURCE))


def valid_documents() -> list[Document]:
    """Fresh copies of the valid fixture objects (tests may change them)."""
    return [Document(d.source, copy.deepcopy(d.obj)) for d in _parsed()]


def find(docs: list[Document], kind: str, name: str | None = None) -> Document:
    for doc in docs:
        if doc.kind == kind and (name is None or doc.name == name):
            return doc
    raise AssertionError(f"no {kind} {name or ''} in the fixture")


def edit(obj: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with ``path`` set to ``value`` (or removed with DELETE)."""
    out = copy.deepcopy(obj)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def with_object(kind: str, path: tuple[str | int, ...], value: Any,
                name: str | None = None) -> list[Document]:
    """The valid fixture with one field of one object changed."""
    docs = valid_documents()
    target = find(docs, kind, name)
    return [Document(d.source, edit(d.obj, path, value)) if d is target else d for d in docs]


def need_crd_schemas() -> None:
    """Skip when no CRD schema directory exists (a clone without ../shared)."""
    if not any((root / "kafka.strimzi.io").is_dir() for _, root in crd_dirs()):
        pytest.skip("no CRD schemas (../shared/schemas/crds or .cache/crd-schemas)")
