"""What every task shares: option help, loading the inventory, turning errors into exits.

Tasks stay thin: they parse options, call :func:`session`, then a plain function.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task, task

from tasks.engine.errors import UserError
from tasks.engine.report import Reporter, Summary
from tasks.engine.target import SshSettings, SshTarget, scrub_environment
from tasks.model import Loaded, choose_path, load
from tasks.model.model import Host

if TYPE_CHECKING:
    from tasks.cluster.kube import Tools

HELP = {
    "inventory": "inventory file (default: $STACK_INVENTORY, else ./inventory.yaml)",
    "check": "plan mode: read the current state and show what would change; change nothing",
    "verbose": "also show SSH round trips and extra detail",
    "host": "only this host (a hosts[].name); default: every host",
    "trust-new-host-key": "first contact: record an unknown host key in the project"
                          " known_hosts (check its fingerprint first)",
}


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a :class:`UserError` as one line per problem and exit with its code."""
    try:
        yield
    except UserError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        raise Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise Exit(code=130) from None


def confirm_cluster(name: str, confirm: str | None, *, task: str, prompt: str) -> None:
    """A destructive task goes on only once the cluster's name is typed (``--confirm
    NAME`` without a terminal); anything else stops it with one line."""
    if confirm is None:
        if not sys.stdin.isatty():
            raise UserError(f"{task}: pass --confirm {name} to run it without a terminal")
        confirm = input(f"{prompt} Type {name} to go on: ")
    if confirm.strip() != name:
        raise UserError(f"not confirmed (typed {confirm.strip()[:40]!r}, the cluster"
                        f" is {name!r}): nothing was changed")


@dataclass
class Session:
    """A validated inventory plus the run's options and the shared reporter/summary."""

    inventory: Loaded
    check: bool = False
    verbose: bool = False
    only_host: str | None = None
    trust_new_host_key: bool = False
    reporter: Reporter = field(default_factory=Reporter)
    summary: Summary = field(default_factory=Summary)
    #: Open connections, one per host, shared by every layer of the run.
    connections: dict[str, SshTarget] = field(default_factory=dict)
    #: The first server's admin kubeconfig once read (k3s.install reads it with its
    #: facts; the cluster layers then need no round trip of their own).
    node_kubeconfig: dict[str, str] = field(default_factory=dict)
    #: Plan mode only: why the cluster cannot be read yet (K3s not installed), once a
    #: cluster layer found out; later cluster layers then plan from the repository.
    cluster_unreadable: str = ""
    #: kubectl and helm, found once for the run (``helm version`` asked once, not once
    #: per cluster layer): see :meth:`tools`.
    found_tools: Tools | None = None

    def tools(self) -> Tools:
        """The kubectl and helm every cluster layer of this run uses."""
        if self.found_tools is None:
            from tasks.cluster.kube import Tools

            self.found_tools = Tools.find()
        return self.found_tools

    def hosts(self) -> list[Host]:
        if self.only_host:
            return [self.inventory.host(self.only_host)]
        return list(self.inventory.data.hosts)

    def ssh_settings(self, host: Host) -> SshSettings:
        first, *others = host.connect_ports(self.inventory.data.host.ssh.port)
        return SshSettings(
            address=host.address, port=first, user=host.user,
            key_file=self.inventory.key_file(host), known_hosts=self.inventory.known_hosts,
            trust_new_host_key=self.trust_new_host_key,
            connect_timeout=float(self.inventory.data.host.ssh.connect_timeout),
            fallback_ports=tuple(others), record_host_keys=not self.check,
        )

    def target(self, host: Host) -> SshTarget:
        """A new, unopened connection to ``host`` (see :meth:`connect` for the shared one)."""
        return SshTarget(host.name, self.ssh_settings(host))

    def connect(self, host: Host) -> SshTarget:
        """The run's open connection to ``host`` (opened the first time)."""
        target = self.connections.get(host.name)
        if target is None:
            target = self.target(host)
            self.connections[host.name] = target
        target.open()
        return target

    def replace_connection(self, host: Host, target: SshTarget) -> None:
        """``target`` is this host's connection from now on (sshd moved); the old one
        is closed."""
        old = self.connections.get(host.name)
        if old is not None and old is not target:
            old.close()
        self.connections[host.name] = target

    def close(self) -> None:
        for target in self.connections.values():
            target.close()
        self.connections.clear()

    def finish(self) -> None:
        """Close the connections, print the summary; exit non-zero when a step failed."""
        self.close()
        self.reporter.summary(self.summary)
        if self.summary.failed:
            raise Exit(code=1)


def session(inventory: str | None = None, *, check: bool = False, verbose: bool = False,
            host: str | None = None, trust_new_host_key: bool = False,
            offline: bool = False) -> Session:
    """Load and validate the inventory (raising before any connection) into a Session.

    ``offline`` tasks never connect, so the hosts' SSH key files need not exist.
    """
    scrub_environment()  # no child process may inherit the sudo password
    loaded = load(choose_path(inventory), require_key_files=not offline)
    s = Session(loaded, check=check, verbose=verbose, only_host=host,
                trust_new_host_key=trust_new_host_key, reporter=Reporter(verbose=verbose))
    if host:
        s.inventory.host(host)
    return s


CLUSTER_LAYER_OPTIONS = ("inventory", "check", "verbose", "trust-new-host-key")


def cluster_layer_task(name: str, converge: Callable[[Session], object], doc: str) -> Task[
        Callable[..., None]]:
    """The task of a cluster layer (``inv ingress.certs`` and the like): the inventory,
    plan mode, verbose and first contact as options, then ``converge`` and the summary."""

    def body(c: Context, inventory: str | None = None, check: bool = False,
             verbose: bool = False, trust_new_host_key: bool = False) -> None:
        with user_errors():
            s = session(inventory, check=check, verbose=verbose,
                        trust_new_host_key=trust_new_host_key)
            converge(s)
            s.finish()

    body.__name__ = body.__qualname__ = name
    body.__doc__ = doc
    made: Task[Callable[..., None]] = task(
        name=name, help={option: HELP[option] for option in CLUSTER_LAYER_OPTIONS})(body)
    return made
