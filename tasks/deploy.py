"""deploy.*: the whole platform, layer by layer, in order."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import apps, flux, ingress, k3s, kafka, monitoring
from tasks import harden as harden_layer
from tasks.cli import HELP, session, user_errors
from tasks.engine.errors import UserError

#: The layers ``deploy.all`` converges, in order: what brings CRDs before what uses them
#: (cert-manager before the apps' Certificate, Strimzi before Kafka, kube-prometheus-stack's
#: monitoring CRDs before Kafka's PodMonitor), the NetworkPolicy of kafka.deploy before the
#: apps start, Flux before the apps it may manage.
LAYERS = [("host.harden", harden_layer.run), ("k3s.install", k3s.run),
          ("ingress.certs", ingress.run), ("monitoring.install", monitoring.install),
          ("kafka.deploy", kafka.run),
          ("flux.bootstrap", flux.bootstrap), ("apps.deploy", apps.deploy)]


@task(name="all", help={"inventory": HELP["inventory"], "check": HELP["check"],
                        "verbose": HELP["verbose"], "host": HELP["host"],
                        "trust-new-host-key": HELP["trust-new-host-key"]})
def all_(c: Context, inventory: str | None = None, check: bool = False, verbose: bool = False,
         host: str | None = None, trust_new_host_key: bool = False) -> None:
    """Converge every layer in order (host, K3s, ingress, monitoring, Kafka, Flux, apps)."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        for index, (name, run) in enumerate(LAYERS):
            s.reporter.note("deploy", f"== {name}")
            try:
                run(s)
            except UserError as exc:
                if not (s.check and index > 0):
                    raise
                # Plan mode on a host without K3s yet: the cluster layers cannot be read.
                later = ", ".join(n for n, _ in LAYERS[index:])
                s.reporter.note("deploy", f"{exc.lines[0]}: {later} would run after"
                                " k3s.install (not planned further)")
                break
            if s.summary.failed:
                break
        s.finish()


ns = Collection("deploy", all_)
