"""``inv upgrade``: read what runs, plan the moves, then apply them one layer at a time.

Each layer with a move runs as deploy.all runs it (tasks.deploy.LAYERS: k3s.install goes
server by server, then agent by agent, each node Ready before the next; the cluster
layers converge with ``helm upgrade --install --wait``, the Strimzi operator before the
Kafka CR); a chart that ships CRDs in ``crds/`` gets the new ones first (:mod:`.crds`:
Helm never upgrades them). After each layer a health gate reads the cluster again:
every node Ready, the layer's nodes at the new K3s, its releases ``deployed`` at the new
chart, the Deployments of its namespaces Available, the Kafka at the new version and
Ready. A layer that fails, or whose gate does not pass, stops the run: each of its
releases that moved goes back to the revision it had before (``helm rollback NAME REV
--wait --timeout``), unless helm's own ``--rollback-on-failure`` already did, and one
line says what failed and what was rolled back. A second run finds nothing to move and
says so in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tasks import monitoring
from tasks.apps import RELEASE_SECONDS as APPS_SECONDS
from tasks.cli import Session
from tasks.cluster import access
from tasks.cluster.kube import ReleaseState, Tools
from tasks.cluster.steps import read
from tasks.engine.command import Command
from tasks.engine.converge import converge
from tasks.engine.errors import UserError
from tasks.engine.facts import Fact
from tasks.engine.report import Status
from tasks.engine.target import Target, gather
from tasks.stack.components import apps as apps_chart
from tasks.upgrade import crds, show
from tasks.upgrade import facts as f
from tasks.upgrade.plan import Move, Pin, Plan, make_plan, pins

Runner = Callable[[Session], bool]
#: helm's --wait deadline for a rollback: the layer's own for that release.
ROLLBACK_SECONDS = {**monitoring.RELEASE_SECONDS, apps_chart.RELEASE: APPS_SECONDS}
DEFAULT_ROLLBACK_SECONDS = 600  # HelmReleaseStep's default wait
#: The Deployments of the cluster itself (CoreDNS, Traefik, metrics-server, local-path):
#: what a K3s upgrade must leave Available.
K3S_NAMESPACE = "kube-system"


def tools_of(target: Target) -> Tools:
    tools: Tools = target.tools  # type: ignore[attr-defined]
    return tools


def read_deployed(target: Target, everything: Sequence[Pin]) -> f.Deployed:
    """Nodes, releases and the Kafka CR, in one batch."""
    tools = tools_of(target)
    nodes, releases = f.nodes_fact(tools), f.releases_fact(tools)
    kafka_pin = next((p for p in everything if p.kind == "kafka"), None)
    wanted: list[Fact[Any]] = [nodes, releases]
    kafka = f.kafka_fact(tools, kafka_pin.namespace, kafka_pin.name) if kafka_pin else None
    if kafka is not None:
        wanted.append(kafka)
    got = gather(target, wanted)
    return f.Deployed(read(got, nodes), read(got, releases),
                      read(got, kafka) if kafka is not None else None)


def gate(target: Target, moves: Sequence[Move]) -> list[str]:
    """What is not healthy after a layer's moves (empty: the gate passes)."""
    tools = tools_of(target)
    namespaces = sorted({m.namespace for m in moves if m.namespace}
                        | ({K3S_NAMESPACE} if any(m.component == "k3s" for m in moves) else set()))
    nodes, releases = f.nodes_fact(tools), f.releases_fact(tools)
    deployments = [f.deployments_fact(tools, ns) for ns in namespaces]
    kafka = [f.kafka_fact(tools, m.namespace, m.name) for m in moves if m.component == "kafka"]
    got = gather(target, [nodes, releases, *deployments, *kafka])
    out = [f"node {n.name} is not Ready: {n.message or 'no message'}"
           for n in read(got, nodes) if not n.ready]
    running = {n.name: n.kubelet for n in read(got, nodes)}
    listed: Mapping[tuple[str, str], ReleaseState] = read(got, releases)
    for m in moves:
        if m.component == "k3s":
            node = m.where.removeprefix("node ")
            if running.get(node) != m.wanted:
                out.append(f"node {node} runs {running.get(node, 'nothing')}, not {m.wanted}")
        elif m.chart:
            state = listed.get((m.namespace, m.name))
            want = f"{m.chart}-{m.wanted}"
            if state is None:
                out.append(f"release {m.release} is gone")
            elif state.status != "deployed" or state.chart != want:
                out.append(f"release {m.release} is {state.status} at {state.chart}, not"
                           f" deployed at {want}")
    for fact in deployments:
        out += [f"Deployment {d.namespace}/{d.name} is not Available: {d.message or 'no message'}"
                for d in read(got, fact) if not d.available]
    for cr_fact, m in zip(kafka, [m for m in moves if m.component == "kafka"], strict=True):
        cr = read(got, cr_fact)
        if cr is None:
            out.append(f"{m.where} is gone")
        elif not cr.ready:
            out.append(f"{m.where} is not Ready: {cr.message or 'no message'}")
        elif cr.status_version != m.wanted:
            out.append(f"{m.where} runs Kafka {cr.status_version or '(not reported)'}, not"
                       f" {m.wanted}")
    return out


def rollback_command(tools: Tools, name: str, namespace: str, revision: int,
                     seconds: int) -> Command:
    """``helm rollback NAME REVISION``, waited (the same flags on helm 3 and 4)."""
    return Command((tools.helm, "rollback", name, str(revision), "-n", namespace, "--wait",
                    f"--timeout={seconds}s"), timeout=seconds + 60)


def roll_back(target: Target, moves: Sequence[Move], before: f.Deployed) -> list[str]:
    """Each release of ``moves`` back at the revision it had before the layer: one line
    per release that had changed (helm's own rollback, ours, or ours failing)."""
    tools = tools_of(target)
    releases = f.releases_fact(tools)
    listed = read(gather(target, [releases]), releases)
    out = []
    for m in moves:
        was = before.releases.get((m.namespace, m.name)) if m.chart else None
        now = listed.get((m.namespace, m.name))
        if was is None or (now is not None and now.revision == was.revision):
            continue  # the layer never reached it
        if now is not None and now.status == "deployed" and now.chart == was.chart:
            out.append(f"helm already rolled {m.release} back to {was.chart} (revision"
                       f" {now.revision})")
            continue
        seconds = ROLLBACK_SECONDS.get(m.name, DEFAULT_ROLLBACK_SECONDS)
        done = target.exec(rollback_command(tools, m.name, m.namespace, was.revision, seconds))
        if done.rc == 0:
            out.append(f"{m.release} rolled back to revision {was.revision} ({was.chart})")
        else:
            why = (done.stderr.strip().splitlines() or [f"exit {done.rc}"])[-1][:200]
            out.append(f"rolling {m.release} back to revision {was.revision} failed: {why}")
    return out


def _failure(session: Session, layer: str) -> str:
    failed = [o for o in session.summary.outcomes if o.status is Status.FAILED]
    if not failed:
        return f"{layer} failed"
    last = failed[-1]
    if not last.details:
        return f"{last.step} failed"
    detail = last.details[0]
    return detail if detail.startswith(last.step) else f"{last.step}: {detail}"


def new_crds(session: Session, layer: str, moving: Sequence[Pin]) -> None:
    """The new charts' ``crds/`` CRDs applied before the layer (see :mod:`.crds`); a
    UserError, before any chart moved, when that fails."""
    from tasks.stack import charts

    releases = [p.upstream for p in moving if p.upstream is not None]
    if not releases:
        return
    with access.cluster(session) as target:
        steps = crds.steps(tools_of(target), releases, lambda r: charts.chart_archive(r))
        if steps and not converge(target, steps, check=False, reporter=session.reporter,
                                  summary=session.summary):
            raise UserError(f"upgrade stopped at {layer}: {_failure(session, layer)};"
                            " no chart had moved")


def runners() -> dict[str, Runner]:
    from tasks.deploy import LAYERS

    return dict(LAYERS)


def upgrade(session: Session, layers: Mapping[str, Runner] | None = None) -> Plan:
    """Plan, print, and (unless ``session.check``) apply; a UserError when a layer or its
    gate fails (after the rollback) or when a move is refused."""
    inv = session.inventory.data
    out = session.reporter.out
    everything = pins(inv)
    with access.cluster(session) as target:
        before = read_deployed(target, everything)
    only = [h.name for h in session.hosts()] if session.only_host else None
    plan = make_plan(inv, everything, before, only)
    for line in show.lines(plan):
        print(line, file=out)
    if not plan.moves or session.check:
        return plan
    run = layers if layers is not None else runners()
    by_name = {p.component: p for p in everything}
    for layer in plan.layers():
        moves = plan.of(layer)
        session.reporter.note("upgrade", f"== {layer}: "
                              + ", ".join(f"{m.component} {m.current} -> {m.wanted}"
                                          for m in moves))
        new_crds(session, layer, [by_name[m.component] for m in moves])
        try:
            problems = [] if run[layer](session) else [_failure(session, layer)]
        except UserError as exc:
            problems = [exc.lines[0]]
        if not problems:
            with access.cluster(session) as target:
                problems = gate(target, moves)
        if problems:
            with access.cluster(session) as target:
                undone = roll_back(target, moves, before)
            tail = "; ".join(undone) if undone else "nothing to roll back (no chart had moved)"
            raise UserError(f"upgrade stopped at {layer}: {problems[0]}; {tail}")
        session.reporter.note("upgrade", f"{layer}: healthy at the new versions")
    return plan
