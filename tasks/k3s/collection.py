"""k3s.*: install (and upgrade) K3s on the hosts; uninstall it behind a typed confirmation."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks import k3s as layer
from tasks.cli import HELP, confirm_cluster, session, user_errors
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
            targets = ", ".join(h.name for h in s.hosts())
            confirm_cluster(name, confirm, task="k3s.uninstall deletes the cluster and its"
                            " data", prompt=f"This removes K3s and every volume, Secret and"
                            f" object of cluster {name} from {targets}.")
        removal = HostLayer("k3s.uninstall", lambda _s, _h, _t: [K3sRemoved(inv.k3s.data_dir)],
                            hosts=lambda ss: list(reversed(ss.hosts())))  # agents first
        run_host_layer(s, removal)
        s.finish()


ns = Collection("k3s", install, uninstall)

__all__ = ["ns"]
