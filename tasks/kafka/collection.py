"""kafka.*: the Strimzi operator and the Kafka cluster the apps use (spec §8)."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import kafka as layer
from tasks.cli import HELP, session, user_errors


@task(help={"inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
            "trust-new-host-key": HELP["trust-new-host-key"]})
def deploy(c: Context, inventory: str | None = None, check: bool = False, verbose: bool = False,
           trust_new_host_key: bool = False) -> None:
    """Strimzi (pinned chart), the NetworkPolicy, Kafka my-cluster, its topics and user Ready."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose,
                    trust_new_host_key=trust_new_host_key)
        layer.run(s)
        s.finish()


ns = Collection("kafka", deploy)
