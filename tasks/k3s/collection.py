"""k3s.*: install (and upgrade) K3s on the hosts; uninstall it behind a typed confirmation."""

from __future__ import annotations

import sys

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import k3s as layer
from tasks.cli import HELP, session, user_errors
from tasks.engine.errors import UserError
from tasks.k3s.uninstall import K3sRemoved
from tasks.layer import HostLayer, run_host_layer

OPTIONS = {"inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
           "host": HELP["host"], "trust-new-host-key": HELP["trust-new-host-key"]}


@task(help=OPTIONS)
def install(c: Context, inventory: str | None = None, check: bool = False,
            verbose: bool = False, host: str | None = None,
            trust_new_host_key: bool = False) -> None:
    """Install or upgrade K3s (versions.k3s) on the hosts, servers first, each node Ready."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        layer.run(s)
        s.finish()


@task(help={**OPTIONS, "confirm": "the cluster name (k3s.cluster_name), to run without"
                                  " the prompt"})
def uninstall(c: Context, inventory: str | None = None, check: bool = False,
              verbose: bool = False, host: str | None = None, confirm: str | None = None,
              trust_new_host_key: bool = False) -> None:
    """Remove K3s and ALL its data from the hosts (asks you to type the cluster name)."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        inv = s.inventory.data
        name = inv.k3s.cluster_name
        if not check:
            if confirm is None:
                if not sys.stdin.isatty():
                    raise UserError(f"k3s.uninstall deletes the cluster and its data: pass"
                                    f" --confirm {name} to run it without a terminal")
                targets = ", ".join(h.name for h in s.hosts())
                confirm = input(f"This removes K3s and every volume, Secret and object of"
                                f" cluster {name} from {targets}. Type {name} to go on: ")
            if confirm.strip() != name:
                raise UserError(f"not confirmed (typed {confirm.strip()[:40]!r}, the cluster"
                                f" is {name!r}): nothing was changed")
        removal = HostLayer("k3s.uninstall", lambda _s, _h, _t: [K3sRemoved(inv.k3s.data_dir)],
                            hosts=lambda ss: list(reversed(ss.hosts())))  # agents first
        run_host_layer(s, removal)
        s.finish()


ns = Collection("k3s", install, uninstall)

__all__ = ["ns"]
