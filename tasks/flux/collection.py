"""flux.*: bootstrap Flux (spec §5) without the flux CLI."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import flux as layer
from tasks.cli import HELP, session, user_errors


@task(help={"inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
            "trust-new-host-key": HELP["trust-new-host-key"]})
def bootstrap(c: Context, inventory: str | None = None, check: bool = False,
              verbose: bool = False, trust_new_host_key: bool = False) -> None:
    """Flux (pinned flux2 chart), its deploy key and sops-age Secrets, the sync objects Ready."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose,
                    trust_new_host_key=trust_new_host_key)
        layer.bootstrap(s)
        s.finish()


ns = Collection("flux", bootstrap)
