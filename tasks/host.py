"""host.*: the host layer (hardening) of every inventory host."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import harden as harden_layer
from tasks.cli import HELP, session, user_errors


@task(help={"inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
            "host": HELP["host"], "trust-new-host-key": HELP["trust-new-host-key"]})
def harden(c: Context, inventory: str | None = None, check: bool = False,
           verbose: bool = False, host: str | None = None,
           trust_new_host_key: bool = False) -> None:
    """Harden the hosts: packages, sshd, UFW, fail2ban, kernel, login, files, auditd, updates."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        harden_layer.run(s)
        s.finish()


ns = Collection("host", harden)
