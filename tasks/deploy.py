"""deploy.*: the whole platform, layer by layer, in order.

Every layer is check-then-act: a converged one reads its facts and changes nothing, so a
run is resumable without state of its own. A run stops at the first layer that fails
(the later ones are listed as not run); the next run goes through the converged layers
again, each ``ok`` without a change, and continues where it failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from tasks import apps, flux, ingress, k3s, kafka, monitoring
from tasks import harden as harden_layer
from tasks.cli import HELP, Session, session, user_errors
from tasks.engine.errors import UserError
from tasks.engine.report import Reporter
from tasks.engine.table import document, table

Layer = tuple[str, Callable[[Session], bool]]

#: The layers ``deploy.all`` converges, in order: what brings CRDs before what uses them
#: (cert-manager before the apps' Certificate, Strimzi before Kafka, kube-prometheus-stack's
#: monitoring CRDs before Kafka's PodMonitor), the NetworkPolicy of kafka.deploy before the
#: apps start, Flux before the apps it may manage.
LAYERS: list[Layer] = [
    ("host.harden", harden_layer.run), ("k3s.install", k3s.run),
    ("ingress.certs", ingress.run), ("monitoring.install", monitoring.install),
    ("kafka.deploy", kafka.run),
    ("flux.bootstrap", flux.bootstrap), ("apps.deploy", apps.deploy)]


class UsageError(UserError):
    """A wrong option value (an unknown layer name): exit 2, as for a bad inventory."""

    exit_code = 2


def select(only: str | None = None, start: str | None = None,
           layers: Sequence[Layer] = LAYERS) -> list[Layer]:
    """The layers ``--only A,B`` or ``--from A`` name, in the stack's order."""
    names = [name for name, _ in layers]

    def known(name: str) -> str:
        if name not in names:
            raise UsageError(f"unknown layer {name!r}: the layers are {', '.join(names)}")
        return name

    if only is not None and start is not None:
        raise UsageError("--only and --from do not go together: use one of them")
    if only is not None:
        chosen = {known(n.strip()) for n in only.split(",") if n.strip()}
        if not chosen:
            raise UsageError("--only needs a layer name (or several, comma-separated)")
        return [layer for layer in layers if layer[0] in chosen]
    if start is not None:
        return list(layers[names.index(known(start.strip())):])
    return list(layers)


def converge_stack(s: Session, layers: Sequence[Layer]) -> UserError | None:
    """Run ``layers`` in order, each recorded in ``s.summary.layers``. A run stops at the
    first layer that fails (the later ones recorded as not run: they depend on it); a
    plan (``s.check``) goes on, as nothing depends on a plan. Returns the first error
    that stopped a layer before or between its steps (also in the layer's record)."""
    stopped: UserError | None = None
    failed = False
    for number, (name, run) in enumerate(layers, 1):
        if failed and not s.check:
            s.summary.not_run(name)
            continue
        s.reporter.note("deploy", f"== {name} (layer {number} of {len(layers)})")
        with s.summary.layer(name) as record:
            try:
                ok = run(s)
            except UserError as exc:
                record.error, ok = exc.lines[0], False
                stopped = stopped or exc
        failed = failed or not ok or record.result == "failed"
    return stopped


def finish(s: Session, *, as_json: bool) -> None:
    """Close connections; the table and summary for people, the document for machines."""
    s.close()
    for line in table(s.summary):
        s.reporter.plain(line)
    s.reporter.summary(s.summary)
    if as_json:
        print(json.dumps(document(s.summary, check=s.check), indent=2))


@task(name="all", help={
    "inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
    "host": HELP["host"], "trust-new-host-key": HELP["trust-new-host-key"],
    "json": "print a JSON document of the run on stdout (layers, steps, results, changes,"
            " times); the progress lines go to stderr",
    "from": "start at this layer (the earlier ones are not run)",
    "only": "only these layers, comma-separated (in the stack's order)"})
def all_(c: Context, inventory: str | None = None, check: bool = False, verbose: bool = False,
         host: str | None = None, trust_new_host_key: bool = False, json: bool = False,
         from_: str | None = None, only: str | None = None) -> None:
    """Converge every layer in order (host, K3s, ingress, monitoring, Kafka, Flux, apps)."""
    with user_errors():
        layers = select(only, from_)
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        if json:
            s.reporter = Reporter(sys.stderr, verbose=verbose)
        stopped = converge_stack(s, layers)
        finish(s, as_json=json)
        if stopped is not None:
            raise stopped
    if s.summary.failed:
        raise Exit(code=1)


ns = Collection("deploy", all_)
