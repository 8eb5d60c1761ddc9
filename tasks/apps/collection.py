"""apps.*: our applications on the cluster (spec §9): deploy them, diagnose them."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from tasks import apps as layer
from tasks.cli import HELP, cluster_layer_task, session, user_errors

deploy = cluster_layer_task(
    "deploy", layer.deploy,
    "Our chart (charts/apps) after its namespace and Secrets; the Ingress's certificate Ready.")


@task(help={"name": "only this app (api-gateway...) or pod, Ready or not; default: every"
                    " pod of ours that is not Ready",
            "json": "print a JSON list (pod, app, container, cause, ok, evidence) instead",
            "inventory": HELP["inventory"],
            "trust-new-host-key": HELP["trust-new-host-key"]})
def diagnose(c: Context, name: str | None = None, json: bool = False,
             inventory: str | None = None, trust_new_host_key: bool = False) -> None:
    """Why pods of ours are not Ready: one likely cause each, then the evidence.

    The evidence: waiting reason, last exit (code, reason, time), restarts, the previous
    container's last log lines (error lines first), the pod's events, and the Secrets,
    ConfigMaps, keys, pull Secrets and PVCs that do not resolve. Exit 1 when something
    is wrong.
    """
    from tasks.apps.diagnose.reads import run

    with user_errors():
        s = session(inventory, trust_new_host_key=trust_new_host_key)
        try:
            code = run(s, name, json)
        finally:
            s.close()
    if code:
        raise Exit(code=code)


ns = Collection("apps", deploy, diagnose)
