"""A small typed-data validator: dataclasses in, precise one-line errors out.

Inventory sections are frozen dataclasses. :func:`build` walks YAML data against their
type hints (``str``, ``int``, ``bool``, ``Literal``, ``list[T]``, ``dict[str, T]``,
``T | None``, nested dataclasses) plus per-field checks from :func:`spec`, collecting
every error as ``path: message``; :func:`json_schema` derives the JSON Schema shipped
for editors from the same classes, so the two never disagree.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from tasks.engine.text import escape

T = TypeVar("T")

Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Rule:
    """A value check: returns an error (``expected ...``) or None; plus its JSON Schema."""

    check: Check
    schema: dict[str, Any]


def spec(default: Any = MISSING, *, doc: str, rule: Rule | None = None,
         factory: Callable[[], Any] | None = None) -> Any:
    """Declare a field: its default, a description for the schema, an optional rule."""
    meta = {"doc": doc, "rule": rule}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


SHOWN_MAX = 60


__all__ = ["escape"]  # re-exported: the model's modules import it from here


def quoted(text: str, limit: int = SHOWN_MAX) -> str:
    """``text`` in double quotes, escaped and cut like :func:`escape`."""
    return escape(text, limit, quote='"')


def show(value: Any) -> str:
    """How a bad value is echoed in errors: JSON-like (strings quoted), escaped, and cut
    after :data:`SHOWN_MAX` characters; never walks more of ``value`` than it shows, so
    aliased or recursive data cannot make a huge message."""
    if isinstance(value, str):
        return quoted(value)
    out = _Shown()
    out.render(value)
    text = "".join(out.parts)
    return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX] + "..."


class _Shown:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def render(self, value: Any) -> None:
        if self.size > SHOWN_MAX:
            return
        if value is None or isinstance(value, bool | float):
            self.add(json.dumps(value))
        elif isinstance(value, int):
            self.add(_int_text(value))
        elif isinstance(value, list | tuple | set | frozenset):
            self._items("[]", [(None, v) for v in value])
        elif isinstance(value, dict):
            self._items("{}", list(value.items()))
        else:
            self.add(quoted(str(value)))

    def _items(self, brackets: str, items: list[tuple[Any, Any]]) -> None:
        self.add(brackets[0])
        for i, (key, item) in enumerate(items):
            if self.size > SHOWN_MAX:
                return
            if i:
                self.add(", ")
            if brackets == "{}":
                self.render(key if isinstance(key, str) else show(key))
                self.add(": ")
            self.render(item)
        self.add(brackets[1])


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than Python converts
        return f"an integer of {value.bit_length()} bits"


def show_key(key: Any) -> str:
    """A mapping key as part of an error path: bare when plain, else like :func:`show`."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,60}", key):
        return key
    return show(key)


class Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)


def _join(path: str, key: Any, index: bool = False) -> str:
    if index:
        return f"{path}[{key}]"
    return f"{path}.{show_key(key)}" if path else show_key(key)


def _optional_inner(tp: Any) -> Any | None:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0]
    return None


def _describe(tp: Any) -> str:
    if tp is str:
        return "a string"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if get_origin(tp) is list:
        return "a list"
    if get_origin(tp) is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return str(tp)


def _value(tp: Any, data: Any, path: str, errors: Errors, rule: Rule | None) -> Any:
    inner = _optional_inner(tp)
    if inner is not None:
        return None if data is None else _value(inner, data, path, errors, rule)
    origin = get_origin(tp)
    result: Any
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, data, path, errors)
    if origin is Literal:
        choices = get_args(tp)
        if data not in choices:
            errors.add(path, f"expected one of {', '.join(show(c) for c in choices)},"
                             f" got {show(data)}")
            return choices[0]
        return data
    if origin is list:
        if not isinstance(data, list):
            errors.add(path, f"expected a list, got {show(data)}")
            return []
        (item,) = get_args(tp)
        result = [_value(item, v, _join(path, i, index=True), errors, rule)
                  for i, v in enumerate(data)]
        return result
    if origin is dict:
        if not isinstance(data, dict):
            errors.add(path, f"expected a mapping, got {show(data)}")
            return {}
        _, item = get_args(tp)
        return {str(k): _value(item, v, _join(path, k), errors, rule)
                for k, v in data.items()}
    if tp is bool:
        ok = isinstance(data, bool)
    elif tp is int:
        ok = isinstance(data, int) and not isinstance(data, bool)
    elif tp is str:
        ok = isinstance(data, str)
    else:  # pragma: no cover - a programming error in the model
        raise TypeError(f"unsupported field type {tp!r} at {path}")
    if not ok:
        expected = rule_expectation(rule) or _describe(tp)
        errors.add(path, f"expected {expected}, got {show(data)}")
        return data
    if rule is not None:
        problem = rule.check(data)
        if problem and problem.startswith("expected "):
            errors.add(path, f"{problem}, got {show(data)}")
        elif problem:  # a refusal: the value, then why
            errors.add(path, f"{show(data)} {problem}")
    return data


def rule_expectation(rule: Rule | None) -> str | None:
    """The ``expected ...`` wording of a rule, used for type errors too."""
    if rule is None:
        return None
    message = rule.check(None)
    return message.removeprefix("expected ") if message else None


def _build(cls: type[T], data: Any, path: str, errors: Errors) -> T:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.add(path, f"expected a mapping, got {show(data)}")
        data = {}
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            errors.add(_join(path, key), f"unknown key (known keys: {known})")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        fpath = _join(path, name)
        if name in data:
            values[name] = _value(hints[name], data[name], fpath, errors,
                                  field.metadata.get("rule"))
        elif field.default is not MISSING:
            values[name] = field.default
        elif field.default_factory is not MISSING:
            values[name] = field.default_factory()
        elif dataclasses.is_dataclass(hints[name]):
            values[name] = _build(hints[name], {}, fpath, errors)
        else:
            errors.add(fpath, "required key is missing")
    if any(name not in values for name in fields):
        return typing.cast(T, None)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # pragma: no cover - guarded above
        errors.add(path, str(exc))
        return typing.cast(T, None)


def build(cls: type[T], data: Any) -> tuple[T, list[str]]:
    """Validate ``data`` as ``cls``; returns the instance and every error found."""
    errors = Errors()
    result = _build(cls, data, "", errors)
    return result, errors.items


# JSON Schema ---------------------------------------------------------------------------

def json_schema(cls: type[Any], title: str) -> dict[str, Any]:
    schema = _schema_of(cls)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
            **schema}


def _schema_of(tp: Any, rule: Rule | None = None, doc: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": doc} if doc else {}
    inner = _optional_inner(tp)
    if inner is not None:
        sub = _schema_of(inner, rule)
        return {**out, "anyOf": [sub, {"type": "null"}]}
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        props = {}
        required = []
        for f in dataclasses.fields(tp):
            props[f.name] = _schema_of(hints[f.name], f.metadata.get("rule"),
                                       f.metadata.get("doc"))
            if f.default is MISSING and f.default_factory is MISSING and not (
                    dataclasses.is_dataclass(hints[f.name])):
                required.append(f.name)
            default = _default_of(f)
            if default is not MISSING:
                props[f.name]["default"] = default
        out.update({"type": "object", "additionalProperties": False, "properties": props})
        if required:
            out["required"] = required
        return out
    if origin is Literal:
        return {**out, "enum": list(get_args(tp))}
    if origin is list:
        (item,) = get_args(tp)
        return {**out, "type": "array", "items": _schema_of(item, rule)}
    if origin is dict:
        _, item = get_args(tp)
        return {**out, "type": "object", "additionalProperties": _schema_of(item, rule)}
    base = {bool: "boolean", int: "integer", str: "string"}[tp]
    out["type"] = base
    if rule is not None:
        out.update(rule.schema)
    return out


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not MISSING:
        value = f.default
    elif f.default_factory is not MISSING:
        value = f.default_factory()
    else:
        return MISSING
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)  # type: ignore[arg-type]
    return value
