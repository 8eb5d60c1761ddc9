"""ingress.*: Traefik and cert-manager with both ClusterIssuers (spec §3-4)."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import ingress as layer
from tasks.cli import HELP, session, user_errors


@task(help={"inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
            "trust-new-host-key": HELP["trust-new-host-key"]})
def certs(c: Context, inventory: str | None = None, check: bool = False, verbose: bool = False,
          trust_new_host_key: bool = False) -> None:
    """Traefik's NodePorts, cert-manager (pinned chart), its API, both ClusterIssuers Ready."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose,
                    trust_new_host_key=trust_new_host_key)
        layer.run(s)
        s.finish()


ns = Collection("ingress", certs)
