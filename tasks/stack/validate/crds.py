"""Fill the CRD schema cache: CustomResourceDefinitions in, JSON schemas out.

    kubectl get crd -o json | python -m tasks.stack.validate.crds
    helm template cert-manager jetstack/cert-manager --set crds.enabled=true \\
        | python -m tasks.stack.validate.crds
    python -m tasks.stack.validate.crds crds.yaml --out DIR

Each served version's ``openAPIV3Schema`` becomes ``<out>/<group>/<kind>_<version>.json``
(default out: ``.cache/crd-schemas``), made strict as ``inv validate`` expects: objects
that list their properties refuse others (unless the CRD preserves unknown fields) and
``nullable`` fields accept null. Other objects in the input are ignored.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from tasks.stack.validate.schemas import CACHE_DIR


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema as strict JSON Schema."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "enum":
            out[key] = value
        elif key == "properties" and isinstance(value, dict):
            # a map of field names: each value is a schema (a field may be named "enum")
            out[key] = {k: strict(v) for k, v in value.items()}
        else:
            out[key] = strict(value)
    if (isinstance(out.get("properties"), dict) and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def crds_in(objs: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """CustomResourceDefinitions in a stream of objects (Lists are opened)."""
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        if obj.get("kind") == "CustomResourceDefinition":
            yield obj
        elif str(obj.get("kind", "")).endswith("List"):
            yield from crds_in(obj.get("items") or [])


def schemas_of(crd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``<group>/<kind>_<version>.json`` -> schema, for every version with a schema."""
    spec = crd.get("spec") or {}
    group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
    out: dict[str, Any] = {}
    for version in spec.get("versions") or []:
        schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
        if group and kind and isinstance(schema, dict):
            out[f"{group}/{kind.lower()}_{version['name']}.json"] = strict(schema)
    return out


def write(crds: Iterable[dict[str, Any]], out: Path) -> list[Path]:
    written = []
    for crd in crds:
        for rel, schema in schemas_of(crd).items():
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.stack.validate.crds",
                                     description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("files", nargs="*", help="CRD YAML/JSON files (default: stdin)")
    parser.add_argument("--out", type=Path, default=CACHE_DIR,
                        help="schema directory (default: .cache/crd-schemas)")
    args = parser.parse_args(argv)
    texts = [Path(f).read_text() for f in args.files] if args.files else [sys.stdin.read()]
    objs = [o for text in texts for o in yaml.safe_load_all(text)]
    written = write(crds_in(objs), args.out)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("no CustomResourceDefinition with a schema in the input", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
