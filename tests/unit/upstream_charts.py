"""Small real charts for the upstream-render tests, packaged as ``helm package`` does.

``widgets`` 1.2.3: a Deployment whose image comes from the values, a Widget custom
resource (its CRD in the chart's ``crds/`` folder: ``spec.size`` an integer >= 1), a
subchart ``sub`` as a folder and a subchart ``nested`` as a nested archive, read under
its alias ``inner``; ``nested`` renders the CRD of Gadget from a template.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.stack import charts
from tasks.stack.render import Release
from tasks.tooling.fetch import sha256_file

REPO = "https://charts.example.org"
CHART, VERSION = "widgets", "1.2.3"


def crd(kind: str, group: str, properties: dict[str, Any]) -> dict[str, Any]:
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                           "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {
                         "spec": {"type": "object", "properties": properties}}}}}]}}


WIDGET_CRD = crd("Widget", "example.org",
                 {"size": {"type": "integer", "minimum": 1}, "colour": {"type": "string"}})
GADGET_CRD = crd("Gadget", "example.org", {"volts": {"type": "integer"}})

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  selector: {matchLabels: {app: widgets}}
  template:
    metadata: {labels: {app: widgets}}
    spec:
      containers:
        - name: widgets
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          resources: {{ toJson .Values.resources }}
"""
WIDGET = """\
apiVersion: example.org/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec: {{ toJson .Values.widget }}
"""


def _meta(name: str, version: str, **extra: Any) -> str:
    return yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version,
                           "type": "application", **extra})


def tgz(files: Mapping[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def nested_archive() -> bytes:
    return tgz({
        "nested/Chart.yaml": _meta("nested", "0.2.0"),
        "nested/values.yaml": yaml.safe_dump({"level": 1, "knobs": {"a": 1}}),
        "nested/templates/crd.yaml": yaml.safe_dump(GADGET_CRD),
    })


def chart_files(image_tag: str = "2.0.1") -> dict[str, str | bytes]:
    deps = [{"name": "sub", "version": "0.1.0"},
            {"name": "nested", "version": "0.2.0", "alias": "inner"}]
    values = {"image": {"repository": "registry.example.org/widgets", "tag": image_tag},
              "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"cpu": "100m", "memory": "64Mi"}},
              "widget": {"size": 1, "colour": "blue"}, "extra": {}}
    return {
        f"{CHART}/Chart.yaml": _meta(CHART, VERSION, dependencies=deps),
        f"{CHART}/values.yaml": yaml.safe_dump(values),
        f"{CHART}/templates/deployment.yaml": DEPLOYMENT,
        f"{CHART}/templates/widget.yaml": WIDGET,
        f"{CHART}/crds/widget.yaml": yaml.safe_dump(WIDGET_CRD),
        f"{CHART}/charts/sub/Chart.yaml": _meta("sub", "0.1.0"),
        f"{CHART}/charts/sub/values.yaml": yaml.safe_dump({"replicas": 1,
                                                           "deep": {"x": 1}}),
    }


@dataclass
class Pulled:
    """A chart archive in a cache folder, locked in its own charts.lock.yaml."""

    cache: Path
    lock: Path
    archive: Path

    def release(self, values: dict[str, Any]) -> Release:
        return Release(name="widgets", namespace="shop", repo_name="example", repo_url=REPO,
                       chart=CHART, version=VERSION, values_source="helm-values/widgets.yaml",
                       values=values)


def pull(root: Path, *, image_tag: str = "2.0.1", data: bytes | None = None) -> Pulled:
    """The widgets chart (or ``data``) as ``inv charts.pull`` leaves it, digest locked."""
    cache, lock = root / "charts", root / "charts.lock.yaml"
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"{CHART}-{VERSION}.tgz"
    if data is None:
        # the nested subchart goes in as an archive, as `helm dependency build` leaves it
        data = tgz({**chart_files(image_tag),
                    f"{CHART}/charts/nested-0.2.0.tgz": nested_archive()})
    archive.write_bytes(data)
    key = (REPO, CHART, VERSION)
    charts.write_lock({key: charts.Locked(sha256_file(archive), "test")}, lock)
    return Pulled(cache, lock, archive)
