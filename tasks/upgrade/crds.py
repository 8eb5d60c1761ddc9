"""The CRDs Helm leaves behind: a chart's ``crds/`` folder is installed once and never
upgraded (helm.sh/docs/chart_best_practices/custom_resource_definitions), so a chart that
ships its CRDs there (Strimzi; kube-prometheus-stack through its ``crds`` subchart) would
run its new operator against the old schemas. Before such a chart moves, ``inv upgrade``
applies the CRDs of the new, pulled and digest-checked archive server-side (the way both
projects' upgrade notes say, ``kubectl apply --server-side``), through the same
:class:`~tasks.cluster.steps.ObjectsStep` as every other object: diffed first, applied
only when they differ, then waited Established. Charts that template their CRDs
(cert-manager's ``installCRDs``, flux2) have no ``crds/`` folder: nothing to do.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from tasks.cluster import kube
from tasks.cluster.kube import Tools
from tasks.cluster.steps import ObjectsStep
from tasks.engine.errors import UserError
from tasks.stack.render import Document, Release

#: ``<chart>/crds/x.yaml`` and a subchart's ``<chart>/charts/<sub>/crds/x.yaml``: the
#: folders Helm reads CRDs from.
CRD_FILE = re.compile(r"^[^/]+/(?:charts/[^/]+/)*crds/[^/]+\.(?:ya?ml|json)$")
ESTABLISHED_SECONDS = 60


def chart_crds(archive: Path) -> list[Document]:
    """The CustomResourceDefinitions of a chart archive's ``crds/`` folders."""
    out = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if not member.isfile() or not CRD_FILE.match(member.name):
                    continue
                f = tar.extractfile(member)
                text = f.read().decode() if f else ""
                for doc in yaml.safe_load_all(text):
                    if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                        out.append(Document(f"{archive.name}:{member.name}", doc))
    except (tarfile.TarError, OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{archive}: cannot read its CRDs ({exc})") from None
    return out


def crd_step(tools: Tools, release: Release, archive: Callable[[Release], Path]
             ) -> ObjectsStep | None:
    """The step that brings ``release``'s new chart CRDs; None when it has none."""
    docs = chart_crds(archive(release))
    if not docs:
        return None
    waits = [kube.wait(tools, "crd", d.name, None, "Established", ESTABLISHED_SECONDS)
             for d in docs]
    return ObjectsStep(f"crds-{release.name}", f"{release.name}: {len(docs)} CRDs of chart"
                       f" {release.chart} {release.version} (Helm upgrades none)", tools, docs,
                       waits=waits)


def steps(tools: Tools, releases: Sequence[Release],
          archive: Callable[[Release], Path]) -> list[ObjectsStep]:
    return [s for s in (crd_step(tools, r, archive) for r in releases) if s is not None]
