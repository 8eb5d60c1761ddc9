"""Render the whole stack for one inventory and report every problem, one line each.

Order: render each component (a render error is a problem, the others still run);
schema-validate every object; what the API server refuses beyond the schema; names,
plaintext Secrets, duplicates and namespaces; the policy rules on our workloads; each
component's ``checks(bundle, ctx)``; the Secret templates of secrets/
(tasks/stack/sops.py); the GitOps layout (tasks/stack/gitops.py, see :mod:`.layout`);
``helm lint --strict`` on our chart. When the pinned upstream charts are pulled, each is
rendered with our values first (:mod:`tasks.stack.upstream`): its objects are validated
too, and the CRDs it carries give the schemas of custom kinds (exact for the pinned
versions; the schema directories are the fallback).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT
from tasks.stack import charts, components, helm, upstream
from tasks.stack.render import Bundle, Document, Release
from tasks.stack.validate import apiserver, layout, objects, policy
from tasks.stack.validate.messages import describe, field_path
from tasks.stack.validate.schemas import SchemaStore

APPS_CHART = REPO_ROOT / "charts" / "apps"


@dataclass(frozen=True)
class Checked:
    """One object that was validated, and the schema it was validated against."""

    doc: Document
    schema: str
    missing: str | None = None  # why no schema file was found (reported once per file)


@dataclass
class Report:
    """The outcome of a validation run."""

    problems: list[str] = field(default_factory=list)
    checked: list[Checked] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: one line per upstream chart not rendered, and how to get it (not a problem)
    skipped: list[str] = field(default_factory=list)
    #: the upstream releases rendered from their archives, and their objects validated
    rendered: list[upstream.Rendered] = field(default_factory=list)
    upstream: list[Checked] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def files(self) -> set[str]:
        return {c.doc.source for c in self.checked}

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    def summary(self) -> str:
        n = len(self.problems)
        outcome = "ok" if not n else f"{n} problem{'s' if n != 1 else ''}"
        charts_part = (f" and {len(self.upstream)} from {len(self.rendered)} upstream charts"
                       if self.rendered else "")
        return (f"validated {len(self.checked)} objects from {len(self.files)} files"
                f"{charts_part} in {self.seconds:.2f}s: {outcome}")

    def timing_line(self) -> str:
        return "time: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items())


_STORE: SchemaStore | None = None


def default_store() -> SchemaStore:
    """One store per process: compiled validators are reused across runs."""
    global _STORE
    if _STORE is None:
        _STORE = SchemaStore()
    return _STORE


def schema_problems(docs: Iterable[Document], store: SchemaStore
                    ) -> tuple[list[str], list[Checked]]:
    """Each object against its schema. A missing schema file is not a line here but
    noted in the Checked entries: :func:`missing_schemas` reports each file once."""
    problems: list[str] = []
    checked: list[Checked] = []
    for doc in docs:
        found, errors = store.validate(doc.obj)
        missing = found.problem if found.missing_file else None
        checked.append(Checked(doc, found.source or "none", missing))
        if found.problem and not missing:
            problems.append(f"{doc.label}: {found.problem}")
        for error in errors:
            problems += [f"{doc.label}: {field_path(p)}: {m}" for p, m in describe(error)]
    return problems, checked


def missing_schemas(checked: Iterable[Checked]) -> list[str]:
    """One line per missing schema file, naming its first object and how to get it."""
    seen: dict[str, list[Checked]] = {}
    for item in checked:
        if item.missing:
            seen.setdefault(item.missing, []).append(item)
    out = []
    for text, items in seen.items():
        more = f" (and {len(items) - 1} more objects)" if len(items) > 1 else ""
        out.append(f"{items[0].doc.label}{more}: {text}")
    return out


def validate_documents(docs: list[Document], releases: list[Release] | None = None, *,
                       store: SchemaStore | None = None, namespaces: bool = True,
                       report_missing: bool = True) -> tuple[list[str], list[Checked]]:
    """Schema, metadata, policy, duplicate and namespace problems of a set of objects
    (missing schema files too, unless ``report_missing`` is off: the caller reports
    them over several sets)."""
    releases = releases or []
    problems, checked = schema_problems(docs, store or default_store())
    if report_missing:
        problems += missing_schemas(checked)
    for doc in docs:
        problems += [f"{doc.label}: {line}" for line in objects.metadata_problems(doc)
                     + objects.secret_problems(doc) + apiserver.check(doc)]
        problems += policy.check(doc)
    problems += objects.duplicates(docs) + objects.release_problems(releases)
    if namespaces:
        problems += objects.namespace_problems(docs, releases)
    return problems, checked


def render_components(ctx: Mapping[str, Any]) -> tuple[dict[str, Bundle], list[str]]:
    """Every component's bundle; a component that fails to render is a problem line."""
    bundles: dict[str, Bundle] = {}
    problems: list[str] = []
    for module in components.modules():
        try:
            bundles[module.NAME] = module.render(ctx)
        except UserError as exc:
            problems += [f"component {module.NAME}: {line}" for line in exc.lines]
    return bundles, problems


def component_checks(bundles: Mapping[str, Bundle], ctx: Mapping[str, Any]) -> list[str]:
    """Each rendered component's optional ``checks(bundle, ctx)`` hook."""
    problems: list[str] = []
    for module in components.modules():
        hook: Callable[[Bundle, Mapping[str, Any]], list[str]] | None = getattr(
            module, "checks", None)
        if hook is None or module.NAME not in bundles:
            continue
        try:
            problems += hook(bundles[module.NAME], ctx)
        except UserError as exc:
            problems += [f"component {module.NAME}: {line}" for line in exc.lines]
    return problems


def chart_values(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The values the apps component installs our chart with (its ``values(ctx)``)."""
    for module in components.modules():
        if module.NAME == "apps" and hasattr(module, "values"):
            values: dict[str, Any] = module.values(ctx)
            return values
    return {}


def lint_chart(ctx: Mapping[str, Any]) -> list[str]:
    """``helm lint --strict`` on charts/apps, with the values we deploy it with."""
    if not (APPS_CHART / "Chart.yaml").is_file():
        return []
    try:
        lines = helm.lint(APPS_CHART, chart_values(ctx))
    except UserError as exc:
        return [f"charts/apps: helm lint: {line}" for line in exc.lines]
    return [f"charts/apps: helm lint: {line}" for line in lines]


def gitops_layout(bundles: Mapping[str, Bundle], ctx: Mapping[str, Any]
                  ) -> tuple[Any, list[str]]:
    """The GitOps layout of these bundles (tasks/stack/gitops.py), or its build errors."""
    from tasks.stack import gitops  # lazily: it renders every component itself otherwise

    try:
        return gitops.build(ctx, bundles), []
    except UserError as exc:
        return None, [f"gitops: {line}" for line in exc.lines]


def validate_gitops(files: Mapping[str, str], docs: list[Document],
                    bundle_docs: list[Document], store: SchemaStore
                    ) -> tuple[list[str], list[Checked]]:
    """The layout as Flux applies it (see :mod:`.layout`): objects copied unchanged from a
    bundle were validated already; the rest are checked here, then the whole."""
    seen = [d.obj for d in bundle_docs]
    new = [d for d in docs if d.obj not in seen]
    problems, checked = validate_documents(new, store=store, namespaces=False,
                                           report_missing=False)
    problems = [p for p in problems if "duplicate object" not in p]
    problems += objects.duplicates(docs) + objects.namespace_problems(docs)
    problems += layout.kustomize_problems(files) + layout.flux_problems(files, docs)
    return problems, checked


def validate_secrets(ctx: Mapping[str, Any], docs: list[Document], releases: list[Release],
                     store: SchemaStore, *, namespaces: bool = True
                     ) -> tuple[list[str], list[Checked]]:
    """secrets/*.template.yaml stand for the SOPS files Flux applies: valid Secrets in
    namespaces we create, placeholders only, and one for every Secret the stack reads."""
    from tasks.stack import sops

    try:
        templates = sops.template_documents(ctx)
    except UserError as exc:
        return exc.lines, []
    problems, checked = schema_problems(templates, store)
    for doc in templates:
        problems += [f"{doc.label}: {line}" for line in objects.metadata_problems(doc)]
    problems += sops.template_problems(templates) + objects.duplicates(templates)
    if namespaces:
        problems += objects.namespace_problems(templates,
                                               created=objects.created_namespaces(docs))
    have = {(d.namespace or "", d.name) for d in templates}
    for ns, name in sorted(sops.referenced_secrets(docs, releases) - have):
        problems.append(f"secrets/: Secret {ns}/{name}: read by the stack, but no"
                        " secrets/*.template.yaml describes it")
    return problems, checked


def validate_upstream(report: Report, bundles: Mapping[str, Bundle], ctx: Mapping[str, Any],
                      store: SchemaStore, *, cache: Path, lock: Path
                      ) -> tuple[SchemaStore, list[str]]:
    """Render the pulled upstream charts into ``report`` (skip lines for the others):
    the store to validate with (``store`` with the charts' CRD schemas first), and the
    problems of the charts' objects."""
    try:
        releases = upstream.releases(bundles, ctx)
    except UserError as exc:  # flux.release: versions.flux has no chart version
        return store, [f"component flux: {line}" for line in exc.lines]
    found = upstream.run(releases, ctx, cache=cache, lock=lock)
    report.skipped, report.rendered = found.skipped, found.rendered
    store = store.with_inline(found.schemas) if found.schemas else store
    problems, report.upstream = schema_problems(found.documents, store)
    for doc in found.documents:
        problems += [f"{doc.label}: {line}" for line in objects.metadata_problems(doc)
                     + apiserver.check(doc)]
    # An object two charts (or a chart and our manifests) both make: helm refuses the
    # second install. Duplicates among our own objects are reported with them.
    ours = [d for b in bundles.values() for d in b.documents]
    known = set(objects.duplicates(ours))
    problems += [p for p in objects.duplicates([*ours, *found.documents]) if p not in known]
    return store, found.problems + problems


def validate_context(ctx: Mapping[str, Any], *, store: SchemaStore | None = None,
                     charts_cache: Path = charts.CACHE, charts_lock: Path = charts.LOCK
                     ) -> Report:
    """Render every component for ``ctx`` and validate everything it would apply (and
    what the pulled upstream charts in ``charts_cache`` render from our values)."""
    report = Report()
    start = time.perf_counter()
    bundles, report.problems = render_components(ctx)
    report.timings["render"] = time.perf_counter() - start

    start = time.perf_counter()
    store, upstream_problems = validate_upstream(report, bundles, ctx, store or default_store(),
                                                 cache=charts_cache, lock=charts_lock)
    report.timings["upstream"] = time.perf_counter() - start

    start = time.perf_counter()
    docs = [d for b in bundles.values() for d in b.documents]
    report.releases = [r for b in bundles.values() for r in b.releases]
    # A component that failed to render leaves its namespaces out: checking that the
    # others' namespaces exist would only repeat its error.
    complete = not report.problems
    problems, report.checked = validate_documents(docs, report.releases, store=store,
                                                  report_missing=False, namespaces=complete)
    report.problems += problems
    report.problems += component_checks(bundles, ctx)
    problems, checked = validate_secrets(ctx, docs, report.releases, store,
                                         namespaces=complete)
    report.problems += problems
    report.checked += checked
    report.timings["validate"] = time.perf_counter() - start

    start = time.perf_counter()
    built, problems = gitops_layout(bundles, ctx)
    report.problems += problems
    if built is not None:
        report.problems += built.problems
        problems, checked = validate_gitops(built.files, built.documents, docs, store)
        report.problems += problems
        report.checked += checked
    report.timings["gitops"] = time.perf_counter() - start

    start = time.perf_counter()
    if "apps" in bundles or not any(m.NAME == "apps" for m in components.modules()):
        report.problems += lint_chart(ctx)  # (an apps render error says it already)
    report.timings["helm lint"] = time.perf_counter() - start
    report.problems += upstream_problems
    report.problems += missing_schemas([*report.checked, *report.upstream])
    # A problem found twice (helm lint by us and by a component's checks) shows once.
    report.problems = list(dict.fromkeys(report.problems))
    return report
