"""``inv validate``: render everything the deploy applies and check it, offline."""

from __future__ import annotations

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from tasks.cli import HELP, session, user_errors
from tasks.stack.context import context
from tasks.stack.validate import validate_context
from tasks.tooling.lookup import shown


@task(help={"inventory": HELP["inventory"],
            "verbose": "list every object validated, its schema, and the timings"})
def validate(c: Context, inventory: str | None = None, verbose: bool = False) -> None:
    """Render everything the deploy applies and validate it offline.

    Schemas (Kubernetes 1.33, CRDs), names, duplicates, namespaces, policy on our
    workloads, helm lint, the components' checks. The upstream charts pulled into
    .cache/charts/ (inv charts.pull) are rendered with our values and checked too; a
    chart not pulled is one "skipped" line. One line per problem; exit 1 on problems, 2
    on a bad inventory.
    """
    with user_errors():
        s = session(inventory, verbose=verbose, offline=True)
        report = validate_context(context(s.inventory.data))
    if verbose:
        for item in report.checked:
            print(f"checked {item.doc.label} [{item.schema}]")
        for rel in report.releases:
            print(f"checked {rel.values_source}: Release {rel.name} [{rel.repo_name}/"
                  f"{rel.chart} {rel.version} in {rel.namespace}]")
        for rendered in report.rendered:
            rel, n = rendered.release, len(rendered.documents)
            print(f"rendered {rel.chart} {rel.version} ({shown(rendered.archive)}) with"
                  f" {rel.values_source}: {n} object{'s' if n != 1 else ''}, schemas of"
                  f" {rendered.crd_schemas} custom kinds from its CRDs")
        for item in report.upstream:
            print(f"checked {item.doc.label} [{item.schema}]")
    for line in report.skipped:
        print(line)
    for line in report.problems:
        print(line)
    if verbose:
        print(report.timing_line())
    print(report.summary())
    if not report.ok:
        raise Exit(code=1)
