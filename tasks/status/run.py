"""``inv status``: read the hosts and the cluster, never change them, print the findings.

Per host, over the run's SSH connection: one batch of facts (tasks/status/host.py; the
first server's batch also reads the admin kubeconfig, so the cluster needs no round trip
of its own). Then the cluster, through the API tunnel: one batch of kubectl and helm reads
plus the layers' drift facts, then one batch of the kubelets' summaries. A host or an API
that cannot be reached is one unhealthy line, and what could not be checked says so.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from tasks.cli import Session
from tasks.cluster import access
from tasks.cluster.kube import releases_fact
from tasks.cluster.steps import read
from tasks.engine.errors import CommandFailed, UserError
from tasks.engine.facts import Fact, FactError, Facts
from tasks.engine.step import Step
from tasks.engine.target import Target, gather
from tasks.harden import steps as harden_steps
from tasks.harden.fail2ban import Fail2ban
from tasks.harden.firewall import Firewall
from tasks.model.model import Host, Inventory
from tasks.stack.components import flux as flux_component
from tasks.stack.components import kafka as kafka_component
from tasks.stack.context import context
from tasks.status import cluster, drift, findings, host
from tasks.status import cluster_reads as reads
from tasks.status.findings import Finding, bad, unknown

CLUSTER = "cluster"
UNREACHABLE_FIX = "is the host up, and SSH reachable from here? (hosts[].address, port)"


def host_findings(session: Session, h: Host) -> list[Finding]:
    inv = session.inventory.data
    area = f"host {h.name}"
    fresh = h.name not in session.connections
    try:
        target = session.connect(h)
    except UserError as exc:
        return [bad(area, "ssh", exc.lines[0], UNREACHABLE_FIX)]
    steps = harden_steps(inv, h, target.client_address, target.server_port)
    first = h.name == inv.servers[0].name
    wanted = [*host.STATUS_FACTS, *(f for s in steps for f in s.facts()),
              *([access.KUBECONFIG_FACT] if first else [])]
    before = 0 if fresh else target.round_trips  # connecting counts, the first time
    try:
        facts = gather(target, wanted)
    except (CommandFailed, UserError, OSError) as exc:
        return [unknown(area, "facts", f"reading the host failed: {exc}", UNREACHABLE_FIX)]
    finally:
        session.summary.add_round_trips(h.name, target.round_trips - before)
    kubeconfig = facts[access.KUBECONFIG_FACT] if first else None
    if kubeconfig:
        session.node_kubeconfig[h.name] = kubeconfig
    return host_report(inv, h, facts, steps)


def host_report(inv: Inventory, h: Host, facts: Facts, steps: Sequence[Step]) -> list[Finding]:
    """The host's checks and drift from its facts (``steps``: its host.harden steps)."""
    (fw,) = [s for s in steps if isinstance(s, Firewall)]
    (jail,) = [s for s in steps if isinstance(s, Fail2ban)]
    return (host.checks(f"host {h.name}", facts, fw.policy, jail.policy, inv.host.ssh.port)
            + host.drift(h.name, facts, steps))


def _area(area: str, what: str, exc: Exception) -> Finding:
    return unknown(area, what, str(exc))


def cluster_findings(session: Session, target: Target, now: dt.datetime) -> list[Finding]:
    """Every cluster check through ``target`` (kubectl and helm, ``target.tools``)."""
    inv = session.inventory.data
    tools = target.tools  # type: ignore[attr-defined]
    ctx = context(inv)
    steps = drift.layer_steps(session, target)
    node_f, listed_f = reads.node_fact(tools), releases_fact(tools)
    work_f, claims_f = reads.workloads_fact(tools), reads.claims_fact(tools)
    certs_f, flux_f = reads.certificates_fact(tools), reads.flux_fact(tools)
    kafka_f = reads.kafka_fact(tools, inv.kafka.namespace)
    try:
        facts = gather(target, [node_f, listed_f, work_f, claims_f, certs_f, flux_f, kafka_f,
                                *drift.facts_of(steps)])
        nodes = read(facts, node_f)
    except (CommandFailed, UserError, FactError) as exc:
        return [bad(CLUSTER, "API", str(exc), "inv k3s.install checks K3s and the kubeconfig")]
    out = cluster.nodes(nodes or [], inv.versions.k3s)

    def safely(area: str, make: Callable[[], list[Finding]]) -> None:
        try:
            out.extend(make())
        except (UserError, FactError, CommandFailed) as exc:
            out.append(_area(area, area, exc))

    safely("releases", lambda: cluster.releases(read(facts, listed_f),
                                                drift.releases(steps)))
    safely("workloads", lambda: cluster.workloads(read(facts, work_f) or []))
    safely("certificates", lambda: cluster.certificates(read(facts, certs_f), now))
    sync = [f"{d.kind}/{d.namespace}/{d.name}" for d in flux_component.render(ctx).documents
            if d.kind in ("GitRepository", "Kustomization")]
    safely("flux", lambda: cluster.flux(read(facts, flux_f), sync))
    topics = [d.name for d in kafka_component.documents(ctx) if d.kind == "KafkaTopic"]
    safely("kafka", lambda: cluster.kafka(read(facts, kafka_f), inv.kafka.namespace,
                                          inv.kafka.cluster, topics))
    safely("volumes", lambda: volumes(target, facts, claims_f, nodes or []))
    out += drift.findings(facts, steps)
    return out


def volumes(target: Target, facts: Facts, claims_f: Fact[Any], nodes: list[reads.Node]
            ) -> list[Finding]:
    found: list[reads.Claim] = read(facts, claims_f) or []
    tools = target.tools  # type: ignore[attr-defined]
    usage_facts = [reads.usage_fact(tools, n.name) for n in nodes]
    used: dict[tuple[str, str], reads.Usage] = {}
    out: list[Finding] = []
    if found and usage_facts:
        summaries = gather(target, usage_facts)
        for node, fact in zip(nodes, usage_facts, strict=True):
            try:
                used.update(read(summaries, fact))
            except (UserError, FactError) as exc:
                out.append(_area("volumes", f"usage on {node.name}", exc))
    return cluster.volumes(found, used) + out


def run(session: Session, as_json: bool, out: TextIO | None = None,
        now: dt.datetime | None = None) -> int:
    """Check everything; print the screen (or JSON); 0 healthy, 1 otherwise."""
    out = out or sys.stdout
    now = now or dt.datetime.now(dt.UTC)
    inv = session.inventory.data
    found: list[Finding] = []
    for h in session.hosts():
        found += host_findings(session, h)
    server = inv.servers[0]
    if any(f.area == f"host {server.name}" and f.name in ("ssh", "facts") for f in found):
        found.append(bad(CLUSTER, "API", f"not checked: the first server {server.name} cannot"
                         " be reached", UNREACHABLE_FIX))
    else:
        try:
            with access.cluster(session) as target:
                try:
                    found += cluster_findings(session, target, now)
                finally:
                    session.summary.add_round_trips(target.name, target.round_trips)
        except UserError as exc:
            found.append(bad(CLUSTER, "API", exc.lines[0], "inv k3s.install"))
    if as_json:
        print(findings.as_json(found), file=out)
    else:
        for line in findings.lines(found):
            print(line, file=out)
        if session.verbose:
            for name, trips in sorted(session.summary.round_trips.items()):
                print(f"{name}: {trips} round trips", file=out)
    return findings.exit_code(found)
