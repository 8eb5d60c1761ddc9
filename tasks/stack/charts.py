"""The pinned upstream charts: pulled once into ``.cache/charts/``, pinned by digest.

``inv charts.pull`` runs ``helm pull --repo URL CHART --version V`` for every chart the
stack installs (the components' :class:`Release` objects, Loki and Alloy included, and
the Flux chart) and records each archive's sha256 in ``charts.lock.yaml`` the first time;
later pulls must give the same digest. Installs never use a live repository: they call
:func:`chart_archive`, which refuses an archive that is absent, unlocked or whose digest
differs from the lock file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from tasks.engine.errors import UserError
from tasks.engine.report import Reporter, Status, StepOutcome, Summary
from tasks.engine.text import escape
from tasks.repo import REPO_ROOT
from tasks.stack import helm
from tasks.stack.components import cert_manager, flux, kafka, monitoring
from tasks.tooling.fetch import sha256_file
from tasks.tooling.lookup import shown

CACHE = REPO_ROOT / ".cache" / "charts"
LOCK = REPO_ROOT / "charts.lock.yaml"
PULL_TIMEOUT = 600.0
HEADER = """\
# sha256 of every upstream chart archive the stack installs (inv charts.pull writes it).
# A chart's digest is recorded the first time it is pulled, or taken from the digest its
# repository publishes in index.yaml (each entry's source says which); later pulls, and
# every install, refuse an archive whose digest differs. Review changes like code.
"""


class ChartSource(Protocol):
    """What a chart is pulled by (a :class:`~tasks.stack.render.Release` is one)."""

    @property
    def repo_name(self) -> str: ...
    @property
    def repo_url(self) -> str: ...
    @property
    def chart(self) -> str: ...
    @property
    def version(self) -> str: ...


@dataclass(frozen=True)
class Chart:
    repo_name: str
    repo_url: str
    chart: str
    version: str

    @classmethod
    def of(cls, source: ChartSource) -> Chart:
        return cls(source.repo_name, source.repo_url.rstrip("/"), source.chart,
                   str(source.version))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.repo_url, self.chart, self.version)

    @property
    def file_name(self) -> str:
        return f"{self.chart}-{self.version}.tgz"

    @property
    def label(self) -> str:
        return f"{self.repo_name}/{self.chart} {self.version}"


class ChartMissing(UserError):
    """The archive is not pulled (or not locked) yet: ``inv charts.pull`` fixes it."""


def flux_chart(ctx: Mapping[str, Any]) -> Chart:
    release = str(ctx["versions"]["flux"])
    version = flux.CHART_VERSIONS.get(release)
    if version is None:
        known = ", ".join(f"{k} -> {v}" for k, v in flux.CHART_VERSIONS.items())
        raise UserError(f"versions.flux {release}: no flux2 chart version is known for it"
                        f" (tasks/stack/components/flux.py CHART_VERSIONS: {known}): add the"
                        f" {flux.CHART_REPO[0]}/{flux.CHART} chart release whose appVersion is"
                        f" {release}")
    return Chart(*flux.CHART_REPO, flux.CHART, version)


def pinned_charts(ctx: Mapping[str, Any]) -> list[Chart]:
    """Every upstream chart the stack can install, Loki and Alloy even when switched off."""
    with_loki = {**ctx, "monitoring": {**ctx["monitoring"], "loki": True}}
    releases: list[ChartSource] = [*cert_manager.render(ctx).releases, flux_chart(ctx),
                                   *monitoring.render(with_loki).releases,
                                   kafka.operator_release(ctx)]
    charts = [Chart.of(r) for r in releases]
    return list(dict.fromkeys(charts))


# --- the lock file ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Locked:
    sha256: str
    #: where the digest came from: a repository's published index.yaml, or the first pull
    source: str


def read_lock(path: Path = LOCK) -> dict[tuple[str, str, str], Locked]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{shown(path)}: unreadable: {str(exc).splitlines()[0]}") from None
    entries = data.get("charts") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UserError(f"{shown(path)}: expected `charts:` with a list of entries")
    out: dict[tuple[str, str, str], Locked] = {}
    for i, entry in enumerate(entries):
        try:
            key = (str(entry["repo"]).rstrip("/"), str(entry["chart"]), str(entry["version"]))
            out[key] = Locked(str(entry["sha256"]), str(entry.get("source", "")))
        except (KeyError, TypeError):
            raise UserError(f"{shown(path)}: charts[{i}]: needs repo, chart, version and"
                            " sha256") from None
    return out


def write_lock(entries: Mapping[tuple[str, str, str], Locked], path: Path = LOCK) -> None:
    """Rewrite the lock file, sorted by chart, through a temporary file."""
    rows = [{"chart": chart, "version": version, "repo": repo, "sha256": e.sha256,
             "source": e.source}
            for (repo, chart, version), e in sorted(entries.items(),
                                                    key=lambda kv: (kv[0][1], kv[0][2]))]
    text = HEADER + yaml.safe_dump({"charts": rows}, sort_keys=False, width=100)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# --- archives ------------------------------------------------------------------------------

_digests: dict[tuple[str, int, int, int], str] = {}


def _digest(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _digests:
        _digests[key] = sha256_file(path)
    return _digests[key]


def chart_archive(release: ChartSource, *, cache: Path = CACHE, lock: Path = LOCK) -> Path:
    """The pulled archive of ``release``'s chart, checked against the lock file.

    Raises :class:`ChartMissing` (absent or not locked: run ``inv charts.pull``) or a
    :class:`UserError` when its digest differs from the lock file (refused).
    """
    chart = Chart.of(release)
    path = cache / chart.file_name
    entry = read_lock(lock).get(chart.key)
    if entry is None:
        raise ChartMissing(f"{chart.label} ({chart.repo_url}) is not in {shown(lock)}: run"
                           " inv charts.pull")
    if not path.is_file():
        raise ChartMissing(f"{shown(path)} absent: run inv charts.pull")
    digest = _digest(path)
    if digest != entry.sha256:
        raise UserError(f"{shown(path)}: sha256 {digest} differs from {shown(lock)}"
                        f" ({entry.sha256}): refused; delete it and run inv charts.pull")
    return path


def _helm_pull(chart: Chart, dest: Path) -> Path:
    argv = [helm.helm_binary(), "pull", chart.chart, "--repo", chart.repo_url, "--version",
            chart.version, "--destination", str(dest)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=PULL_TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"{chart.label}: helm pull from {chart.repo_url} gave no answer"
                        f" within {PULL_TIMEOUT:.0f}s") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        tail = escape(lines[-1].strip(), 300) if lines else "no output"
        raise UserError(f"{chart.label}: helm pull from {chart.repo_url} failed: {tail}")
    found = sorted(dest.glob("*.tgz"))
    if len(found) != 1:
        raise UserError(f"{chart.label}: helm pull wrote {len(found)} archives, expected 1")
    return found[0]


def pull(charts: list[Chart], reporter: Reporter, summary: Summary, *, check: bool,
         cache: Path = CACHE, lock: Path = LOCK) -> None:
    """Pull what is missing or differs; record new digests; refuse changed ones."""
    entries = read_lock(lock)
    for chart in charts:
        started = time.monotonic()
        path = cache / chart.file_name
        entry = entries.get(chart.key)
        locked = entry.sha256 if entry else None
        present = path.is_file()
        details: list[str] = []
        if locked and present and _digest(path) == locked:
            status = Status.OK
            details.append(f"{shown(path)} (sha256 matches {shown(lock)})")
        else:
            if present and locked:
                details.append(f"{shown(path)} differs from {shown(lock)}: pulling it again")
            then = (f"check it against {shown(lock)}" if locked else
                    f"record its sha256 in {shown(lock)}")
            if check:
                status = Status.WOULD_CHANGE
                details.append(f"would pull {chart.chart} {chart.version} from"
                               f" {chart.repo_url} and {then}")
            else:
                status = Status.CHANGED
                details.append(_pull_one(chart, path, locked, entries, lock))
        outcome = StepOutcome("local", f"chart {chart.label}", status,
                              time.monotonic() - started, details,
                              step_id=f"charts.{chart.chart}")
        summary.outcomes.append(outcome)
        reporter.step(outcome)


def _pull_one(chart: Chart, path: Path, locked: str | None,
              entries: dict[tuple[str, str, str], Locked], lock: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pull-", dir=path.parent))
    try:
        pulled = _helm_pull(chart, tmp)
        digest = sha256_file(pulled)
        if locked is not None and digest != locked:
            raise UserError(f"{chart.label}: the archive from {chart.repo_url} has sha256"
                            f" {digest}, not {locked} as {shown(lock)} says: refused, nothing"
                            " changed (if the chart was really re-published, find out why"
                            " before removing its entry)")
        os.replace(pulled, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if locked is None:
        entries[chart.key] = Locked(digest, f"first inv charts.pull, {time.strftime('%Y-%m-%d')}")
        write_lock(entries, lock)
        return f"pulled {shown(path)} from {chart.repo_url}; sha256 {digest} recorded in" \
               f" {shown(lock)}"
    return f"pulled {shown(path)} from {chart.repo_url}; sha256 matches {shown(lock)}"
