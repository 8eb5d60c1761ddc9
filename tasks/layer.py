"""One runner for every layer: which targets, which steps, which guard, what after.

A layer on hosts (``host.harden``, ``k3s.install``) converges each selected host in
turn over SSH; a layer on the cluster (``ingress.certs``, ``flux.bootstrap``...)
converges the cluster once, through :func:`tasks.cluster.access.cluster`. Both run the
same engine (:func:`tasks.engine.converge.converge`): a layer is data, a list of steps,
not a copy of a loop.

An *after* hook runs once a pass on a target has converged. It may return a new target
for the same host: the layer converges again on it (``host.harden`` does, after moving
sshd to another port), and closes the old one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tasks.cli import Session
from tasks.engine.converge import Guard, converge
from tasks.engine.report import Status, StepOutcome
from tasks.engine.step import Step
from tasks.engine.target import SshTarget, Target
from tasks.model.model import Host

HostSteps = Callable[[Session, Host, SshTarget], Sequence[Step]]
HostGuard = Callable[[Session, Host, SshTarget], Guard | None]
HostAfter = Callable[[Session, Host, SshTarget], SshTarget | None]


@dataclass(frozen=True)
class HostLayer:
    name: str
    steps: HostSteps
    guard: HostGuard | None = None
    after: Sequence[HostAfter] = field(default_factory=tuple)
    #: The hosts, in the order they converge (default: servers first, then agents, so an
    #: upgrade goes server by server, then agent by agent).
    hosts: Callable[[Session], list[Host]] | None = None


def ordered_hosts(session: Session) -> list[Host]:
    """The selected hosts, servers first (inventory order within each role)."""
    chosen = session.hosts()
    return [h for h in chosen if h.role == "server"] + [h for h in chosen if h.role != "server"]


def run_host_layer(session: Session, layer: HostLayer) -> bool:
    """Converge every selected host in order; stops at the first host that fails."""
    hosts = (layer.hosts or ordered_hosts)(session)
    return all(_host(session, layer, host) for host in hosts)  # stops at the first failure


def _host(session: Session, layer: HostLayer, host: Host) -> bool:
    fresh = host.name not in session.connections
    target = session.connect(host)
    counted = 0 if fresh else target.round_trips  # the connect probe counts for the first
    if fresh and target.port_note:
        session.reporter.note(host.name, target.port_note + " (hosts[].port or"
                              " host.ssh.port may need updating)")
    try:
        while True:
            guard = layer.guard(session, host, target) if layer.guard else None
            ok = converge(target, layer.steps(session, host, target), check=session.check,
                          reporter=session.reporter, summary=session.summary, guard=guard)
            if not ok:
                return False
            again = None
            for hook in layer.after:
                again = hook(session, host, target) or again
            if again is None:
                return True
            session.summary.add_round_trips(host.name, target.round_trips - counted)
            session.replace_connection(host, again)
            target, counted = again, 0
            target.open()
    finally:
        # Every round trip of this host in this layer, connecting included the first time.
        session.summary.add_round_trips(host.name, target.round_trips - counted)


ClusterSteps = Callable[[Session, Target], Sequence[Step]]


@dataclass(frozen=True)
class ClusterLayer:
    name: str
    steps: ClusterSteps


def run_cluster_layer(session: Session, layer: ClusterLayer) -> bool:
    """Converge the cluster (kubectl and helm on this machine, through the API tunnel).

    In plan mode before K3s is installed there is no cluster to read: the layer then
    lists what it would do from the repository alone (:func:`plan_from_repository`).
    """
    from tasks.cluster.access import ClusterUnreadable, cluster

    if session.check and session.cluster_unreadable:
        return plan_from_repository(session, layer)
    try:
        with cluster(session) as target:
            try:
                return converge(target, layer.steps(session, target), check=session.check,
                                reporter=session.reporter, summary=session.summary)
            finally:
                session.summary.add_round_trips(target.name, target.round_trips)
    except ClusterUnreadable as exc:
        if not session.check:
            raise
        session.cluster_unreadable = exc.lines[0]
        return plan_from_repository(session, layer)


def plan_from_repository(session: Session, layer: ClusterLayer) -> bool:
    """Plan mode, no cluster yet: every step of ``layer`` as it would run on an empty
    cluster, from the repository alone (nothing is read from the cluster or run)."""
    from tasks.cluster.access import ClusterTarget
    from tasks.engine.table import REPOSITORY_NOTE

    target = ClusterTarget(name=f"cluster {session.inventory.data.k3s.cluster_name}",
                           tools=session.tools())
    session.reporter.note(target.name, f"{REPOSITORY_NOTE}; {session.cluster_unreadable}")
    for step in layer.steps(session, target):
        planned = step.from_repository()
        outcome = StepOutcome(target.name, step.name,
                              Status.WOULD_CHANGE if planned else Status.OK, 0.0, planned,
                              step_id=step.id, changes=len(planned), from_repository=True)
        session.reporter.step(outcome)
        session.summary.outcomes.append(outcome)
    return True
