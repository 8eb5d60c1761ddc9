"""Render every upstream release the inventory enables from its pulled archive.

For each release (cert-manager, flux2, kube-prometheus-stack, strimzi-kafka-operator,
and loki and alloy when ``monitoring.loki`` is on): the archive from ``.cache/charts/``
checked against ``charts.lock.yaml`` (:func:`tasks.stack.charts.chart_archive`); every
key of our values file known to the chart (:mod:`.keys`); ``helm template`` with our
values (:mod:`.template`); the spec's numbers on the result (:mod:`.checks`); and the
schemas of the CRDs it carries, for ``inv validate`` to check custom resources against.
An archive not pulled is a note, not a problem; one that is corrupted or differs from
the lock file is a problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.engine.errors import UserError
from tasks.stack import charts
from tasks.stack.components import flux
from tasks.stack.render import Bundle, Document, Release
from tasks.stack.upstream import checks, keys, template
from tasks.stack.upstream.archive import read_chart
from tasks.stack.upstream.template import Schemas


@dataclass
class Rendered:
    """One release rendered from its archive."""

    release: Release
    archive: Path
    documents: list[Document]
    crd_schemas: int  # how many CRD schemas the chart brought


@dataclass
class Upstream:
    """The outcome over every upstream release."""

    problems: list[str] = field(default_factory=list)
    #: one line per chart not rendered (not pulled) and how to get it
    skipped: list[str] = field(default_factory=list)
    rendered: list[Rendered] = field(default_factory=list)
    #: the CRD schemas of every rendered chart (the first chart defining one wins)
    schemas: Schemas = field(default_factory=dict)

    @property
    def documents(self) -> list[Document]:
        return [d for r in self.rendered for d in r.documents]


def releases(bundles: Mapping[str, Bundle], ctx: Mapping[str, Any]) -> list[Release]:
    """The upstream releases the deploy installs: the components' and Flux's own chart
    (flux.bootstrap installs it; it is no part of the flux bundle)."""
    out = [r for b in bundles.values() for r in b.releases]
    if flux.NAME in bundles:
        out.insert(0, flux.release(ctx))
    return out


def render_one(release: Release, ctx: Mapping[str, Any], out: Upstream, *, cache: Path,
               lock: Path) -> None:
    """Render one release into ``out``: a skip line, or its problems (each step that
    can still run does: unknown keys are reported even when helm template fails)."""
    label = f"chart {release.chart} {release.version}"
    try:
        archive = charts.chart_archive(release, cache=cache, lock=lock)
    except charts.ChartMissing:
        out.skipped.append(f"skipped upstream render of {release.chart} {release.version}:"
                           " not pulled (run inv charts.pull)")
        return
    except UserError as exc:  # its digest differs from the lock file
        out.problems += [f"{label}: {line}" for line in exc.lines]
        return
    try:
        tree = read_chart(archive)
        out.problems += keys.unknown_keys(release, tree)
        docs = template.template(release, archive)
    except UserError as exc:  # a corrupted archive, helm failing
        out.problems += [f"{label}: {line}" for line in exc.lines]
        return
    schemas = template.crd_schemas(release, tree, docs)
    out.problems += checks.check(release, docs, ctx)
    out.rendered.append(Rendered(release, archive, docs, len(schemas)))
    for file, schema in schemas.items():
        out.schemas.setdefault(file, schema)


def run(all_releases: Iterable[Release], ctx: Mapping[str, Any], *,
        cache: Path = charts.CACHE, lock: Path = charts.LOCK) -> Upstream:
    """Every release rendered from its pulled archive, or skipped (not pulled)."""
    out = Upstream()
    for release in all_releases:
        render_one(release, ctx, out, cache=cache, lock=lock)
    return out
