"""Drift of the cluster: what differs from the repository, read by the layers' own facts.

The cluster layers' steps are built as their tasks build them (no Secret decrypted: the
steps of Secrets are left out, as in plan mode before ``secrets.init``), and only their
facts are read: one ``kubectl diff --server-side`` per component (a dry run: the API
server merges and answers, nothing is stored) and the Helm releases' values. An object
that is new or changed is drift; so are a release's values that differ from ours (its
version and status are the ``releases`` checks). Objects a Flux Kustomization manages
are named with it: Flux puts them back at its next reconciliation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks.cli import Session
from tasks.cluster.kube import DiffResult, ObjectState
from tasks.cluster.steps import HelmReleaseStep, ObjectsStep, read
from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, FactError, Facts
from tasks.engine.step import Step
from tasks.engine.target import Target
from tasks.stack.render import Release
from tasks.status.findings import Finding, State, bad, ok, unknown

LayerStep = tuple[str, Step]


def _never(release: Release) -> Path:  # status plans no install: no archive is needed
    return Path("/nonexistent") / f"{release.chart}-{release.version}.tgz"


def layer_steps(session: Session, target: Target) -> list[LayerStep]:
    """(layer task, step) of every cluster layer, in deploy.all's order."""
    from tasks import apps, flux, ingress, kafka, monitoring

    return [*(("ingress.certs", s) for s in ingress.steps(session, target, archive=_never)),
            *(("monitoring.install", s) for s in monitoring.steps(session, target, None,
                                                                  archive=_never)),
            *(("kafka.deploy", s) for s in kafka.steps(session, target, None, archive=_never)),
            *(("flux.bootstrap", s) for s in flux.steps(session, target, None, archive=_never)),
            *(("apps.deploy", s) for s in apps.steps(session, target, None))]


def checked(steps: Sequence[LayerStep]) -> list[LayerStep]:
    """The steps whose facts give drift: our objects and our releases."""
    return [(layer, s) for layer, s in steps if isinstance(s, ObjectsStep | HelmReleaseStep)]


def facts_of(steps: Sequence[LayerStep]) -> list[Fact[Any]]:
    return [f for _, s in checked(steps) for f in s.facts()]


def releases(steps: Sequence[LayerStep]) -> list[tuple[str, Release]]:
    """Our Helm releases (their pinned chart versions), each with its layer."""
    return [(layer, s.release) for layer, s in steps if isinstance(s, HelmReleaseStep)]


def first_change(diff: str) -> str:
    """The first change of kdiff's unified diff (``-`` live, ``+`` ours), as
    ``live <line>, ours <line>``."""
    live = ours = ""
    for line in diff.splitlines():
        if line.startswith(("+++", "---")) or not line[1:].strip():
            continue
        if line[:1] == "-" and not live and not ours:
            live = " ".join(line[1:].split())
        elif line[:1] == "+" and not ours:
            ours = " ".join(line[1:].split())
        elif live or ours:
            break
    return ", ".join(p for p in (f"live {live}" if live else "",
                                 f"ours {ours}" if ours else "") if p)


def _object(layer: str, o: ObjectState) -> Finding:
    if o.state == "new":
        detail = "missing from the cluster"
    else:
        change = first_change(o.diff)
        detail = "changed in the cluster" + (f": {change}" if change else "")
    fix = f"inv {layer}"
    if o.flux_owner:
        fix = f"Flux {o.flux_owner} manages it and puts it back ({fix} asks it now)"
    return bad("drift", o.key, detail, fix)


#: More drifted items than this in one layer are one line for the layer.
ITEMIZED = 3


def _collapse(layer: str, items: list[Finding]) -> list[Finding]:
    differ = [f for f in items if f.state is State.UNHEALTHY]
    if len(differ) <= ITEMIZED:
        return items
    named = ", ".join(f"{f.name} ({f.detail.split(':')[0]})" for f in differ)
    return [bad("drift", layer, f"{len(differ)} differ: {named}", f"inv {layer}"),
            *(f for f in items if f.state is not State.UNHEALTHY)]


def findings(facts: Facts, steps: Sequence[LayerStep]) -> list[Finding]:
    by_layer: dict[str, list[Finding]] = {}
    objects = values = 0
    for layer, step in checked(steps):
        out = by_layer.setdefault(layer, [])
        try:
            if isinstance(step, ObjectsStep):
                result: DiffResult = read(facts, step.diff)
                objects += len(step.docs)
                if result.missing_api:
                    out.append(bad("drift", step.id, f"not applied: {result.missing_api}",
                                   f"inv {layer}"))
                out += [_object(layer, o) for o in result.changed]
            elif isinstance(step, HelmReleaseStep):
                values += 1
                r = step.release
                if read(facts, step.listed).get((r.namespace, r.name)) is None:
                    continue  # not installed: a releases finding says so
                out += [bad("drift", f"release {r.namespace}/{r.name}", p, f"inv {layer}")
                        for p in step.problems(facts) if p.startswith("values differ")]
        except (UserError, FactError) as exc:
            out.append(unknown("drift", step.id, str(exc)))
    out = [f for layer, items in by_layer.items() for f in _collapse(layer, items)]
    if not out:
        out.append(ok("drift", "cluster", f"{objects} objects, {values} releases' values"
                      " as in the repository"))
    return out
