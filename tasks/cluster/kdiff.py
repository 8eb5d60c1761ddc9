"""``KUBECTL_EXTERNAL_DIFF`` program: ``kdiff.py LIVE_DIR MERGED_DIR``.

kubectl writes each object twice, as it is in the cluster (LIVE_DIR; no file for a new
object) and as it would be after our server-side apply (MERGED_DIR), then runs this.
Printed: one JSON line per object (``key``, ``state`` new/changed/same, the Flux
Kustomization owning it, its Ready/Available condition and message, a capped unified
diff); exit 1 when anything differs, 0 when
not (kubectl's convention). Fields the server changes on every write (resourceVersion,
generation, managedFields) are ignored.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

VOLATILE = ("resourceVersion", "generation", "managedFields", "creationTimestamp", "uid")
DIFF_CAP = 4000
FLUX_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_NAME = "kustomize.toolkit.fluxcd.io/name"


def _load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text() or "null")
    return data if isinstance(data, dict) and data else None


def _stable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in VOLATILE}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def _ready(obj: dict[str, Any]) -> tuple[str, str] | None:
    """The live object's Ready (or Available) condition: (status, message).

    Strimzi's operators say a failure the other way round: Kafka and KafkaUser carry
    ``type: NotReady, status: "True"`` (with reason and message) instead of a Ready
    condition that is False (Strimzi 0.47 StatusUtils, KafkaAssemblyOperator); that
    reads as Ready "False" with NotReady's message.
    """
    conditions = (obj.get("status") or {}).get("conditions") or []
    for wanted in ("Ready", "Available", "NotReady"):
        for c in conditions:
            if isinstance(c, dict) and c.get("type") == wanted:
                message = str(c.get("message") or c.get("reason") or "")[:300]
                status = str(c.get("status", "Unknown"))
                if wanted == "NotReady":
                    status = "False" if status == "True" else "Unknown"
                return status, message
    return None


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{meta.get('namespace') or '-'}/{meta.get('name', '?')}"


def compare(live_dir: Path, merged_dir: Path) -> list[dict[str, Any]]:
    names = sorted({p.name for d in (live_dir, merged_dir) if d.is_dir() for p in d.iterdir()})
    out = []
    for name in names:
        live, merged = _load(live_dir / name), _load(merged_dir / name)
        obj = merged or live
        if obj is None:
            continue
        item: dict[str, Any] = {"key": _key(obj)}
        if live is None:
            item["state"] = "new"
        else:
            a, b = _stable(live), _stable(merged or {})
            item["state"] = "same" if a == b else "changed"
            ready = _ready(live)
            if ready is not None:
                item["ready"], item["message"] = ready
            labels = (live.get("metadata") or {}).get("labels") or {}
            if labels.get(FLUX_NAME):
                item["flux_owner"] = f"{labels.get(FLUX_NAMESPACE, '?')}/{labels[FLUX_NAME]}"
            if item["state"] == "changed" and obj.get("kind") != "Secret":  # never its data
                text = "".join(difflib.unified_diff(
                    yaml.safe_dump(a, sort_keys=True).splitlines(keepends=True),
                    yaml.safe_dump(b, sort_keys=True).splitlines(keepends=True),
                    "live", "ours"))
                item["diff"] = text[:DIFF_CAP]
        out.append(item)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: kdiff.py LIVE_DIR MERGED_DIR", file=sys.stderr)
        return 2
    items = compare(Path(argv[1]), Path(argv[2]))
    for item in items:
        print(json.dumps(item, sort_keys=True))
    return 1 if any(i["state"] != "same" for i in items) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
