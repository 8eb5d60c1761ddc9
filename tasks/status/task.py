"""The ``inv status`` task (a top-level task, like ``validate``)."""

from __future__ import annotations

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from tasks.cli import HELP, session, user_errors


@task(help={"inventory": HELP["inventory"], "host": HELP["host"],
            "json": "print {healthy, findings: [{area, name, state, detail, fix}]} instead",
            "verbose": "also show the round trips"})
def status(c: Context, inventory: str | None = None, host: str | None = None,
           json: bool = False, verbose: bool = False) -> None:
    """One screen of health; exit 1 when anything is unhealthy. Changes nothing.

    Hosts (UFW, fail2ban, sshd, dead-man switch, security updates), nodes, Helm releases,
    workloads, Certificates, Flux, Kafka, PVCs and their usage, and drift from the
    repository. Exit 0 healthy (warnings shown), 1 unhealthy, 2 bad input.
    """
    from tasks.status.run import run

    with user_errors():
        # plan mode: nothing recorded either (an unknown host key is refused, not kept)
        s = session(inventory, check=True, verbose=verbose, host=host)
        try:
            code = run(s, json)
        finally:
            s.close()
    if code:
        raise Exit(code=code)
