"""What a pulled chart archive holds: its values, its subcharts' and its CRDs.

Read in memory (nothing is extracted to disk): ``<chart>/Chart.yaml``, ``values.yaml``,
``crds/*.yaml``, and every subchart under ``charts/``, as a folder or as a nested
archive (``charts/<sub>-<version>.tgz``, as ``helm dependency build`` leaves them). A
subchart's values live under its alias when the parent's Chart.yaml gives one.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasks.engine.errors import UserError
from tasks.stack.validate.crds import crds_in
from tasks.tooling.lookup import shown

MAX_MEMBER = 64 * 1024 * 1024  # no file of a chart is this large; refuse, don't read it
CRD_SUFFIXES = (".yaml", ".yml", ".json")


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml's when there: the CRDs are megabytes), reading a
    plain ``=`` as the string it is in YAML 1.2 (PyYAML resolves it to the obsolete
    ``!!value`` tag; the Prometheus Operator's CRDs list it in an enum)."""


Loader.add_constructor("tag:yaml.org,2002:value", Loader.construct_yaml_str)


@dataclass
class ChartTree:
    """One chart of an archive and its subcharts, keyed by where their values live."""

    name: str
    version: str
    values: dict[str, Any]
    #: subchart -> its tree, by the key of the parent's values it reads (alias or name)
    subcharts: dict[str, ChartTree] = field(default_factory=dict)
    #: the CustomResourceDefinitions of this chart's ``crds/`` folder, with their file
    crds: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def all_crds(self, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        """(file in the archive, CRD) of this chart's ``crds/`` and every subchart's."""
        here = f"{path}{self.name}/"
        for file, crd in self.crds:
            yield f"{here}{file}", crd
        for sub in self.subcharts.values():
            yield from sub.all_crds(f"{here}charts/")


class CorruptChart(UserError):
    """The archive cannot be read as a chart."""


def _files(data: bytes, where: str) -> dict[str, bytes]:
    """Regular files of a gzipped tar, by their path below the top folder."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if member.size > MAX_MEMBER:
                    raise CorruptChart(f"{where}: {member.name} is {member.size} bytes:"
                                       " not a chart file")
                _, _, rest = member.name.removeprefix("./").partition("/")
                extracted = tar.extractfile(member)
                if rest and extracted is not None:
                    out[rest] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CorruptChart(f"{where}: not a readable chart archive ({exc})") from None
    return out


def _yaml(files: Mapping[str, bytes], name: str, where: str) -> Any:
    try:
        if name not in files:
            return None
        return yaml.load(files[name].decode(), Loader)  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptChart(f"{where}: {name}: unreadable: {first}") from None


def _crds(files: Mapping[str, bytes], where: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name in sorted(files):
        if not (name.startswith("crds/") and name.endswith(CRD_SUFFIXES)):
            continue
        try:
            docs = list(yaml.load_all(files[name].decode(), Loader))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CorruptChart(f"{where}: {name}: unreadable: {first}") from None
        out += [(name, crd) for crd in crds_in(docs)]
    return out


def _aliases(meta: Mapping[str, Any]) -> dict[str, list[str]]:
    """Subchart name -> the keys its values live under (its aliases, else its name)."""
    out: dict[str, list[str]] = {}
    for dep in meta.get("dependencies") or []:
        if isinstance(dep, dict) and dep.get("name"):
            out.setdefault(str(dep["name"]), []).append(str(dep.get("alias") or dep["name"]))
    return out


def _tree(files: Mapping[str, bytes], where: str) -> ChartTree:
    meta = _yaml(files, "Chart.yaml", where)
    if not isinstance(meta, dict) or not meta.get("name"):
        raise CorruptChart(f"{where}: no Chart.yaml with a name: not a chart")
    values = _yaml(files, "values.yaml", where) or {}
    if not isinstance(values, dict):
        raise CorruptChart(f"{where}: values.yaml: not a mapping")
    tree = ChartTree(str(meta["name"]), str(meta.get("version", "")), values,
                     crds=_crds(files, where))
    folders: dict[str, dict[str, bytes]] = {}
    for name, data in files.items():
        if not name.startswith("charts/"):
            continue
        sub, _, rest = name.removeprefix("charts/").partition("/")
        if rest:
            folders.setdefault(sub, {})[rest] = data
        elif sub.endswith(".tgz"):
            folders[sub] = _files(data, f"{where}: charts/{sub}")
    aliases = _aliases(meta)
    for sub, sub_files in sorted(folders.items()):
        child = _tree(sub_files, f"{where}: charts/{sub}")
        for key in aliases.get(child.name, [child.name]):
            tree.subcharts[key] = child
    return tree


def read_chart(path: Path) -> ChartTree:
    """The chart in the archive at ``path``; :class:`CorruptChart` when unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptChart(f"{shown(path)}: unreadable: {exc.strerror}") from None
    return _tree(_files(data, shown(path)), shown(path))
