"""Finding a tool: :func:`tool_path`, the one door every task goes through.

Tools live in the project tools folder, ``.cache/tools/<tool>-<version>/<binary>``
(``inv tools.install`` puts them there and links ``.cache/bin/<binary>`` to them). That
folder is used before PATH; a binary on PATH is used only when it reports the pinned
version. Whatever is found must report the version the inventory pins, or the caller
gets one line saying how to fix it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.engine.text import escape
from tasks.model.model import Versions
from tasks.repo import REPO_ROOT
from tasks.tooling.catalog import BINARY_TOOL, TOOLS, Tool, normalise

TOOLS_DIR = REPO_ROOT / ".cache" / "tools"
BIN_DIR = REPO_ROOT / ".cache" / "bin"
PROBE_TIMEOUT = 30.0

# (path, inode, size, mtime) -> the version it reported, or why it did not.
_probed: dict[tuple[str, int, int, int], tuple[str | None, str]] = {}


def default_version(tool: str) -> str:
    """The spec's pin (``versions.<tool>`` of a default inventory)."""
    names = {f.name for f in fields(Versions)}
    if tool not in names:
        raise KeyError(tool)
    return normalise(str(getattr(Versions(), tool)))


def tool_dir(tool: str, version: str, tools_dir: Path | None = None) -> Path:
    return (tools_dir or TOOLS_DIR) / f"{tool}-{normalise(version)}"


def shown(path: Path) -> str:
    """A path for messages: relative to the repository when inside it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def probe(tool: Tool, path: Path) -> tuple[str | None, str]:
    """(version ``path`` reports, or None; and what it said or why it failed), cached
    while the file is unchanged."""
    try:
        st = path.stat()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror})"
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _probed:
        _probed[key] = _run_probe(tool, path)
    return _probed[key]


def _run_probe(tool: Tool, path: Path) -> tuple[str | None, str]:
    try:
        proc = subprocess.run([str(path), *tool.version_argv], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
    except OSError as exc:
        return None, f"does not run ({exc.strerror})"
    except subprocess.TimeoutExpired:
        return None, f"did not answer {' '.join(tool.version_argv)} within {PROBE_TIMEOUT:.0f}s"
    out = proc.stdout if proc.stdout.strip() else proc.stderr
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"exits {proc.returncode} on {' '.join(tool.version_argv)}: {escape(tail[0])}"
    version = tool.parse_version(out)
    if version is None:
        head = out.strip().splitlines()[:1] or ["nothing"]
        return None, f"prints no version ({escape(head[0])})"
    return version, version


def on_path(binary: str, *, exclude: tuple[Path, ...] = ()) -> Path | None:
    """``binary`` on PATH, skipping entries that resolve into ``exclude`` (our own cache)."""
    skip = [e.resolve() for e in exclude]
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        found = shutil.which(binary, path=entry or ".")
        if not found:
            continue
        real = Path(found).resolve()
        if any(real.is_relative_to(s) for s in skip):
            continue
        return Path(found)
    return None


def tool_path(name: str, version: str | None = None, *, tools_dir: Path | None = None) -> Path:
    """The path of ``name`` (helm, kubectl, sops, age, age-keygen) at ``version``.

    ``version`` is the inventory's ``versions.<tool>`` (default: the spec's pin). The
    project tools folder comes first, then PATH. Raises a one-line :class:`UserError`
    that says how to fix it when the binary is missing or reports another version.
    """
    if name not in BINARY_TOOL:
        raise UserError(f"unknown tool {name!r} (known: {', '.join(sorted(BINARY_TOOL))})")
    tool = TOOLS[BINARY_TOOL[name]]
    want = normalise(version) if version else default_version(tool.name)
    pinned = f"{name} {want} (versions.{tool.name})"
    fix = "run inv tools.install"
    candidate = tool_dir(tool.name, want, tools_dir) / name
    if candidate.exists():
        got, said = probe(tool, candidate)
        if got == want:
            return candidate
        what = f"reports {got}" if got else said
        raise UserError(f"{shown(candidate)} {what}, not {pinned}: {fix}")
    found = on_path(name)
    if found is None:
        raise UserError(f"{pinned} is not installed: {fix}")
    got, said = probe(tool, found)
    if got == want:
        return found
    what = f"is version {got}" if got else said
    raise UserError(f"{pinned} is not installed: {fix} ({name} on PATH, {found}, {what})")
