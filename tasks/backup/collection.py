"""backup.*: the K3s datastore, token and config, age-encrypted, kept locally; restore."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks.backup import run
from tasks.cli import HELP, confirm_cluster, session, user_errors

OPTIONS = {"inventory": HELP["inventory"], "check": HELP["check"], "verbose": HELP["verbose"],
           "host": "the server to back up or restore (default: the first server)",
           "trust-new-host-key": HELP["trust-new-host-key"]}


@task(help=OPTIONS)
def create(c: Context, inventory: str | None = None, check: bool = False,
           verbose: bool = False, host: str | None = None,
           trust_new_host_key: bool = False) -> None:
    """Back up the K3s datastore, token and config, age-encrypted, into backup.dir."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        run.create(s)
        s.finish()


@task(help={**OPTIONS, "file": "the backup to restore (default: the cluster's newest)",
            "confirm": "the cluster name (k3s.cluster_name), to run without the prompt"})
def restore(c: Context, inventory: str | None = None, check: bool = False,
            verbose: bool = False, host: str | None = None, file: str | None = None,
            confirm: str | None = None, trust_new_host_key: bool = False) -> None:
    """Put a backup back onto the server: K3s stopped, datastore and files, node Ready."""
    with user_errors():
        s = session(inventory, check=check, verbose=verbose, host=host,
                    trust_new_host_key=trust_new_host_key)
        name = s.inventory.data.k3s.cluster_name
        if not check:
            confirm_cluster(name, confirm, task="backup.restore replaces the cluster's"
                            " datastore", prompt=f"This stops K3s and replaces the datastore"
                            f" of cluster {name} with the backup's (the current one is kept"
                            " aside on the server).")
        run.restore(s, file)
        s.finish()


@task(help={"inventory": HELP["inventory"]})
def list_(c: Context, inventory: str | None = None) -> None:
    """The cluster's backups in backup.dir, newest first."""
    with user_errors():
        s = session(inventory, offline=True)
        for line in run.listing(s):
            print(line)


ns = Collection("backup", create, restore)
ns.add_task(list_, name="list")

__all__ = ["ns"]
