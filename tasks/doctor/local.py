"""Checks of this machine: Python against pyproject's requirement, the pinned tools.

A tool is found the way every task finds it (:func:`tasks.tooling.tool_path`: the
project tools folder, then PATH, at the pinned version), then its files are checked the
way ``inv tools.install`` checks them: one it installed against the sha256 it recorded,
one on PATH against the sha256s pinned in ``tasks/tooling/pins.yaml``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from tasks.doctor.findings import Finding, fail, ok, warn
from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT
from tasks.tooling import tool_path
from tasks.tooling.catalog import TOOLS, Tool, normalise
from tasks.tooling.fetch import sha256_file
from tasks.tooling.install import installed
from tasks.tooling.lookup import TOOLS_DIR, shown
from tasks.tooling.pins import Pins

INSTALL = "run inv tools.install"
_MINIMUM = re.compile(r"^\s*>=\s*(\d+(?:\.\d+)*)\s*$")


def required_python(pyproject: Path = REPO_ROOT / "pyproject.toml") -> str:
    """``project.requires-python`` of the project (``>=3.11``)."""
    with pyproject.open("rb") as f:
        return str(tomllib.load(f)["project"]["requires-python"])


def check_python(requirement: str, version: Sequence[int] = sys.version_info[:3]) -> Finding:
    running = ".".join(str(v) for v in version[:3])
    clauses = [c for c in requirement.split(",") if c.strip()]
    minimums = [_MINIMUM.match(c) for c in clauses]
    if not clauses or not all(minimums):
        return warn("python", f"Python {running}; cannot read requires-python"
                    f" {requirement!r} (only >=X.Y)", "check pyproject.toml by hand")
    wanted = max(tuple(int(p) for p in m.group(1).split(".")) for m in minimums if m)
    if tuple(version[:len(wanted)]) < wanted:
        return fail("python", f"Python {running} is running; the project needs"
                    f" {requirement}", f"install Python {'.'.join(map(str, wanted))} or"
                    " later and recreate .venv (python3 -m venv .venv && .venv/bin/pip"
                    " install -e .)")
    return ok("python", f"Python {running} (pyproject: requires-python {requirement})")


def _pinned_digests(tool: Tool, version: str, binary: str, pins: Pins) -> set[str]:
    """Every sha256 pins.yaml gives for ``binary`` of ``tool`` at ``version``."""
    out: set[str] = set()
    for build in pins.builds:
        if (build.tool, build.version) != (tool.name, version):
            continue
        if binary in build.binaries:
            out.add(build.binaries[binary])
        elif build.source == "release" and not tool.release_members and build.download:
            out.add(build.download)  # the release download is the binary itself
    return out


def check_tool(name: str, version: str, pins: Pins, tools_dir: Path = TOOLS_DIR) -> Finding:
    """``name`` found at ``version`` (as tasks find it) and its files' sha256 as pinned."""
    tool = TOOLS[name]
    version = normalise(version)
    check = f"tool {name}"
    try:
        path = tool_path(tool.binaries[0], version, tools_dir=tools_dir)
    except UserError as exc:
        return fail(check, str(exc).replace(f": {INSTALL}", ""), INSTALL)
    if path.parent.resolve() == (tools_dir / f"{name}-{version}").resolve():
        record, why = installed(tool, version, tools_dir)
        if record is None:
            return fail(check, why.removesuffix(": reinstalling"), INSTALL)
        return ok(check, f"{name} {version}: {shown(path)}, sha256 as installed (from"
                  f" {record.source})")
    bad: list[str] = []
    unknown: list[str] = []
    for binary in tool.binaries:
        found = path.with_name(binary)
        pinned = _pinned_digests(tool, version, binary, pins)
        if not pinned:
            unknown.append(binary)
        elif not found.is_file() or sha256_file(found) not in pinned:
            bad.append(str(found))
    if bad:
        return fail(check, f"{name} {version} on PATH, but {', '.join(bad)} is not a pinned"
                    " build (sha256 differs from tasks/tooling/pins.yaml)", INSTALL)
    if unknown:
        return warn(check, f"{name} {version}: {path} on PATH; no sha256 pinned for"
                    f" {', '.join(unknown)} at {version}, so it is not checked", INSTALL)
    return ok(check, f"{name} {version}: {path} on PATH, sha256 pinned")


def check_tools(versions: Mapping[str, str], pins: Pins,
                tools_dir: Path = TOOLS_DIR) -> list[Finding]:
    return [check_tool(name, versions[name], pins, tools_dir) for name in TOOLS]
