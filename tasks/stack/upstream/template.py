"""``helm template`` of a pulled upstream chart with our values, and its CRDs' schemas.

The values go to helm on its standard input (``-f -``): nothing of them in argv or in a
file left behind. Objects are named after the chart and the template they came from
(``chart:kube-prometheus-stack-85.4.0/charts/grafana/templates/deployment.yaml``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tasks.engine.errors import UserError
from tasks.engine.text import escape
from tasks.stack import helm
from tasks.stack.render import Document, Release, parse_documents
from tasks.stack.upstream.archive import ChartTree, Loader
from tasks.stack.validate.crds import schemas_of

KUBE_VERSION = "1.33.3"  # K3s v1.33.3+k3s1 (spec section 2)
TEMPLATE_TIMEOUT = 300.0

#: ``<group>/<kind>_<version>.json`` -> (where the schema comes from, schema)
Schemas = dict[str, tuple[str, dict[str, Any]]]


def source_prefix(release: Release) -> str:
    return f"chart:{release.chart}-{release.version}"


def template(release: Release, archive: Path, *, kube_version: str = KUBE_VERSION
             ) -> list[Document]:
    """The objects ``helm template`` renders from ``archive`` with ``release.values``."""
    argv = [helm.helm_binary(), "template", release.name, str(archive), "--namespace",
            release.namespace, "--kube-version", kube_version, "-f", "-"]
    try:
        proc = subprocess.run(argv, input=yaml.safe_dump(release.values), text=True,
                              capture_output=True, check=False, timeout=TEMPLATE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise UserError(f"helm template gave no answer within {TEMPLATE_TIMEOUT:.0f}s"
                        ) from None
    except OSError as exc:
        raise UserError(f"cannot run helm: {exc.strerror}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        tail = escape(lines[-1], 400) if lines else "no output"
        raise UserError(f"helm template with {release.values_source} failed: {tail}")
    return split_rendered(proc.stdout, source_prefix(release))


def split_rendered(text: str, prefix: str) -> list[Document]:
    """helm's output, each object named by its ``# Source:`` template."""
    docs: list[Document] = []
    for chunk in text.split("\n---"):
        origin = prefix
        for line in chunk.splitlines()[:3]:
            if line.startswith("# Source: "):
                # "# Source: loki/templates/x.yaml" -> "chart:loki-1.0.0/templates/x.yaml"
                origin = f"{prefix}/{line.removeprefix('# Source: ').split('/', 1)[-1]}"
        docs += parse_documents(chunk, origin, Loader)
    return docs


def crd_schemas(release: Release, tree: ChartTree, rendered: Iterable[Document]) -> Schemas:
    """The schema of every custom kind the chart defines: its CRDs in ``crds/`` folders
    (its subcharts' too) and those its templates render, for each served version."""
    label = f"chart {release.chart} {release.version}"
    found: list[tuple[str, dict[str, Any]]] = list(tree.all_crds())
    found += [(d.source.removeprefix(source_prefix(release) + "/"), d.obj)
              for d in rendered if d.kind == "CustomResourceDefinition"]
    out: Schemas = {}
    for where, crd in found:
        for file, schema in schemas_of(crd).items():
            out.setdefault(file, (f"{label} ({where})", schema))
    return out


__all__ = ["Schemas", "crd_schemas", "split_rendered", "template"]
