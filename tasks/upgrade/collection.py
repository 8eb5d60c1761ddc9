"""``inv upgrade``: after a pin changes, the versions that move, then one layer at a time."""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task

from tasks.cli import HELP, session, user_errors
from tasks.upgrade.apply import upgrade as apply_upgrade


@task(help={"inventory": HELP["inventory"],
            "check": "plan mode: the versions that would move and the notes to read first",
            "verbose": HELP["verbose"], "host": HELP["host"],
            "trust-new-host-key": HELP["trust-new-host-key"]})
def upgrade(c: Context, inventory: str | None = None, check: bool = False,
            verbose: bool = False, host: str | None = None,
            trust_new_host_key: bool = False) -> None:
    """Upgrade what a changed pin moves (K3s, charts, Kafka): layer by layer, health-gated."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        try:
            plan = apply_upgrade(s)
        finally:
            s.close()
        if plan.moves and not check:
            s.finish()
