"""charts.*: pull the pinned upstream charts into .cache/charts/ (tasks/stack/charts.py)."""

from __future__ import annotations

import time

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks.cli import HELP, session, user_errors
from tasks.stack import charts
from tasks.stack.context import context


@task(help={"inventory": HELP["inventory"], "check": HELP["check"]})
def pull(c: Context, inventory: str | None = None, check: bool = False) -> None:
    """Pull cert-manager, Flux, kube-prometheus-stack, Loki, Alloy and Strimzi at their pins.

    helm pull --repo <url> <chart> --version <v> into .cache/charts/; each archive's sha256
    is recorded in charts.lock.yaml on first pull and must match it afterwards. Archives
    already there with the locked digest are left alone (no network needed).
    """
    with user_errors():
        s = session(inventory, check=check, offline=True)
        wanted = charts.pinned_charts(context(s.inventory.data))
        started = time.monotonic()
        charts.pull(wanted, s.reporter, s.summary, check=check)
        s.summary.seconds = time.monotonic() - started
        s.finish()


ns = Collection("charts", pull)
