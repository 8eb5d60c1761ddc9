"""JSON Schema errors as short, precise ``<field path>: <problem>`` pairs."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

# jsonschema ships no type hints (types-jsonschema is optional): checked untyped.
from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    ValidationError,
    best_match,
)

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def field_path(parts: Iterable[str | int]) -> str:
    """``spec.template.spec.containers[0].image``; odd keys as ``labels["a.b/c"]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "(object)"


def show(value: Any, limit: int = 60) -> str:
    """A value as JSON, shortened."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _types(schema: Any) -> list[str]:
    if not isinstance(schema, dict) or "type" not in schema:
        return []
    t = schema["type"]
    return [x for x in ([t] if isinstance(t, str) else t) if x != "null"]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number" if isinstance(value, float) else "integer"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else (
        type(value).__name__)


def _unknown_fields(error: ValidationError) -> list[tuple[list[str | int], str]]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = list(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    base = list(error.absolute_path)
    out = []
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in instance:
        if key in known or any(p.search(key) for p in patterns):
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        out.append(([*base, key], f"unknown field{hint}"))
    return out


def _alternatives(error: ValidationError) -> tuple[list[str | int], str]:
    """anyOf/oneOf: a type mismatch against every branch reads as one message."""
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    types = [t for b in branches for t in _types(b)]
    context = list(error.context or [])
    if types and all(e.validator == "type" for e in context):
        wanted = " or ".join(dict.fromkeys(types))
        return list(error.absolute_path), (f"expected {wanted}, got {_type_name(error.instance)}"
                                           f" {show(error.instance)}")
    if error.validator == "oneOf" and not context:
        return list(error.absolute_path), "matches more than one of the allowed forms"
    inner = best_match(context) if context else None
    if inner is None:
        return list(error.absolute_path), error.message
    return describe(inner)[0]


def describe(error: ValidationError) -> list[tuple[list[str | int], str]]:
    """One or more (path parts, message) for a validation error."""
    path = list(error.absolute_path)
    v, inst = error.validator, error.instance
    value: Any = error.validator_value
    if v == "additionalProperties" and value is False:
        return _unknown_fields(error) or [(path, error.message)]
    if v in ("anyOf", "oneOf"):
        return [_alternatives(error)]
    if v == "required":
        missing = [k for k in value if isinstance(inst, dict) and k not in inst]
        return [([*path, k], "required field missing") for k in missing] or [(path,
                                                                             error.message)]
    if v == "type":
        wanted = " or ".join(_types(error.schema)) or str(value)
        return [(path, f"expected {wanted}, got {_type_name(inst)} {show(inst)}")]
    if v == "enum":
        allowed = ", ".join(show(x, 30) for x in value if x is not None)
        return [(path, f"must be one of {allowed}; got {show(inst)}")]
    if v == "const":
        return [(path, f"must be {show(value)}; got {show(inst)}")]
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
              "exclusiveMaximum": "<"}[str(v)]
        return [(path, f"must be {op} {value}; got {show(inst)}")]
    if v in ("minLength", "maxLength", "minItems", "maxItems", "minProperties"):
        return [(path, f"{v} {value} not met; got {show(inst)}")]
    if v == "pattern":
        return [(path, f"must match {value}; got {show(inst)}")]
    return [(path, error.message)]
