"""apps.*: our applications (spec §9): apps.deploy."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import apps as layer
from tasks.cli import HELP, session, user_errors


@task(help={"inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
            "trust-new-host-key": HELP["trust-new-host-key"]})
def deploy(c: Context, inventory: str | None = None, check: bool = False, verbose: bool = False,
           trust_new_host_key: bool = False) -> None:
    """Our chart (charts/apps) after its namespace and Secrets; the Ingress's certificate Ready."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose,
                    trust_new_host_key=trust_new_host_key)
        layer.deploy(s)
        s.finish()


ns = Collection("apps", deploy)
