"""monitoring.*: kube-prometheus-stack, Grafana's dashboards, Loki when asked (spec §6-7)."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import monitoring as layer
from tasks.cli import HELP, session, user_errors


@task(help={"inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
            "trust-new-host-key": HELP["trust-new-host-key"]})
def install(c: Context, inventory: str | None = None, check: bool = False,
            verbose: bool = False, trust_new_host_key: bool = False) -> None:
    """kube-prometheus-stack (pinned chart), Grafana's admin Secret and dashboards, Loki and
    Alloy when asked, the Traefik and cert-manager ServiceMonitors, volumes Bound, targets up."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose,
                    trust_new_host_key=trust_new_host_key)
        layer.install(s)
        s.finish()


ns = Collection("monitoring", install)
