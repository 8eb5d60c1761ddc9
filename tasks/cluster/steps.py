"""The two kinds of cluster step: our objects applied server-side, and a Helm release.

Both read state first (one ``kubectl diff`` of the component's objects; ``helm list``
shared by every release, plus the release's values), change only what differs, and
verify from fresh reads. Objects a Flux Kustomization manages are not fought over: the
step asks Flux to reconcile them instead (the GitOps repository is the source of
truth, and ``inv gitops.render`` writes it from the same files).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tasks.cluster import kube
from tasks.cluster.kube import ClusterFactError, DiffResult, Tools
from tasks.engine.command import Command
from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, FactError, Facts
from tasks.engine.step import Change, Step
from tasks.stack.render import Document, Release

RECONCILE_ANNOTATION = "reconcile.fluxcd.io/requestedAt"


def read(facts: Facts, fact: Fact[Any]) -> Any:
    try:
        return facts[fact]
    except FactError as exc:
        cause = exc.__cause__
        if isinstance(cause, ClusterFactError):
            raise UserError(str(cause)) from None
        raise


class ObjectsStep(Step):
    """Keep ``docs`` applied (server-side, our field manager), then wait for them.

    ``waits`` run after the apply (``kubectl wait``, rollout status): what "ready" means;
    ``must_be_ready`` names objects (as kdiff keys them: "ClusterIssuer/-/letsencrypt-prod")
    whose Ready condition must be True once converged.
    """

    def __init__(self, id: str, name: str, tools: Tools, docs: Sequence[Document], *,
                 waits: Sequence[Command] = (), must_be_ready: Sequence[str] = (),
                 secret: bool = False) -> None:
        self.id, self.name, self.tools, self.docs = id, name, tools, list(docs)
        self.waits, self.must_be_ready = tuple(waits), tuple(must_be_ready)
        self.diff = kube.diff_fact(tools, id, self.docs, secret=secret)

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.diff]

    def plan(self, facts: Facts) -> list[Change]:
        result: DiffResult = read(facts, self.diff)
        if result.converged and not self._not_ready(result):
            return []
        flux = sorted({o.flux_owner for o in result.changed if o.flux_owner})
        ours = [d for d in self.docs
                if not any(o.flux_owner and o.key == _key(d) for o in result.changed)]
        changes = [Change(f"ask Flux to reconcile {owner} (it manages objects that differ)",
                          commands=(_reconcile(self.tools, owner),)) for owner in flux]
        if result.missing_api or [o for o in result.changed if not o.flux_owner]:
            changes.append(Change(self._summary(result), commands=(
                kube.apply(self.tools, ours, f"{len(ours)} objects of {self.id}"),
                *self.waits)))
        elif not changes:  # applied, but not Ready yet
            changes.append(Change(f"wait for {', '.join(self._not_ready(result))}",
                                  commands=tuple(self.waits)))
        return changes

    def from_repository(self) -> list[str]:
        waits = ", then wait until ready" if self.waits else ""
        return [f"create {', '.join(_key(d) for d in self.docs)}{waits}"]

    def _summary(self, result: DiffResult) -> str:
        if result.missing_api:
            return f"apply {len(self.docs)} objects (not there yet: {result.missing_api})"
        new = [o.key for o in result.changed if o.state == "new" and not o.flux_owner]
        changed = [o.key for o in result.changed if o.state == "changed" and not o.flux_owner]
        parts = ([f"create {', '.join(new)}"] if new else []) + (
            [f"update {', '.join(changed)}"] if changed else [])
        return "; ".join(parts)

    def _not_ready(self, result: DiffResult) -> list[str]:
        by_key = {o.key: o for o in result.objects}
        return [k for k in self.must_be_ready if by_key.get(k) and by_key[k].ready != "True"]

    def verify(self, facts: Facts) -> list[str]:
        result: DiffResult = read(facts, self.diff)
        out = [f"{o.key} still differs from ours after the apply" for o in result.changed
               if not o.flux_owner]
        by_key = {o.key: o for o in result.objects}
        for key in self.must_be_ready:
            state = by_key.get(key)
            if state is None or state.ready != "True":
                why = state.message if state and state.message else "no Ready condition yet"
                out.append(f"{key} is not Ready: {why}")
        return out


def _key(doc: Document) -> str:
    return f"{doc.kind}/{doc.namespace or '-'}/{doc.name}"


def _reconcile(tools: Tools, owner: str) -> Command:
    namespace, name = owner.split("/", 1)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Command((tools.kubectl, "annotate", "--overwrite", "-n", namespace,
                    f"kustomization.kustomize.toolkit.fluxcd.io/{name}",
                    f"{RECONCILE_ANNOTATION}={stamp}"), timeout=60)


class HelmReleaseStep(Step):
    """Keep an upstream chart installed at its pinned version with our values.

    ``archive`` gives the pulled, digest-checked chart archive (``charts.pull``); it is
    called when an install or upgrade is planned. ``then`` runs after the release.
    """

    def __init__(self, id: str, name: str, tools: Tools, release: Release, *,
                 archive: Callable[[Release], Path], wait_seconds: int = 600,
                 then: Sequence[Command] = ()) -> None:
        self.id, self.name, self.tools, self.release = id, name, tools, release
        self.archive, self.wait_seconds, self.then = archive, wait_seconds, tuple(then)
        self.listed = kube.releases_fact(tools)
        self.values = kube.values_fact(tools, release)

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.listed, self.values]

    def problems(self, facts: Facts) -> list[str]:
        r = self.release
        state = read(facts, self.listed).get((r.namespace, r.name))
        if state is None:
            return [f"not installed (chart {r.chart} {r.version})"]
        out = []
        if state.chart != f"{r.chart}-{r.version}":
            out.append(f"chart is {state.chart}, want {r.chart}-{r.version}")
        if state.status != "deployed":
            out.append(f"status is {state.status}")
        live = read(facts, self.values)
        if _normal(live or {}) != _normal(r.values):
            out.append(f"values differ from {r.values_source}"
                       f" ({', '.join(_changed_keys(live or {}, r.values)[:5])})")
        return out

    def from_repository(self) -> list[str]:
        r = self.release
        return [f"install {r.namespace}/{r.name}: chart {r.chart} {r.version}"
                f" (values {r.values_source})"]

    def plan(self, facts: Facts) -> list[Change]:
        problems = self.problems(facts)
        if not problems:
            return []
        installed = read(facts, self.listed).get((self.release.namespace, self.release.name))
        verb = "install" if installed is None else "upgrade"
        archive = self.archive(self.release)
        return [Change(f"{verb} {self.release.namespace}/{self.release.name}: {problems[0]}",
                       commands=(kube.upgrade(self.tools, self.release, archive,
                                              self.wait_seconds), *self.then))]

    def verify(self, facts: Facts) -> list[str]:
        return self.problems(facts)


def _normal(values: dict[str, Any]) -> Any:
    return json.loads(json.dumps(values, sort_keys=True, default=str))


def _changed_keys(live: dict[str, Any], wanted: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(live) | set(wanted)):
        a, b = live.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changed_keys(a, b, f"{prefix}{key}.")
        elif _normal({"v": a}) != _normal({"v": b}):
            out.append(f"{prefix}{key}")
    return out
