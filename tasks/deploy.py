"""deploy.*: the whole platform, layer by layer, in order."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import harden as harden_layer
from tasks.cli import HELP, session, user_errors

#: The layers ``deploy.all`` converges, in order. The cluster layers (k3s.install,
#: ingress.certs, flux.bootstrap, monitoring.install, kafka.deploy, apps.deploy) join
#: this list as their tasks land; their manifests are already checked by ``inv validate``.
LAYERS = [("host.harden", harden_layer.run)]


@task(name="all", help={"inventory": HELP["inventory"], "check": HELP["check"],
                        "verbose": HELP["verbose"], "host": HELP["host"],
                        "trust-new-host-key": HELP["trust-new-host-key"]})
def all_(c: Context, inventory: str | None = None, check: bool = False, verbose: bool = False,
         host: str | None = None, trust_new_host_key: bool = False) -> None:
    """Converge everything in order (today: host.harden); stops at the first failure."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        for name, run in LAYERS:
            s.reporter.note("deploy", f"== {name}")
            run(s)
            if s.summary.failed:
                break
        s.finish()


ns = Collection("deploy", all_)
