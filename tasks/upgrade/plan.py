"""The upgrade plan: the repository's pins against what runs, as a list of moves.

Pins live where each layer reads them: ``versions.k3s`` (k3s.install), the charts'
versions of the components' :class:`~tasks.stack.render.Release` objects (the
inventory's ``versions.*``; Flux's chart from ``versions.flux`` through
``CHART_VERSIONS``; our own chart's ``charts/apps/Chart.yaml``), and the Kafka version
of the Kafka CR (``versions.kafka``). A move is a pin that differs from what runs, with
the layer that applies it and what to read first. Downgrades are refused, as is a K3s
jump over a Kubernetes minor (Kubernetes upgrades one minor at a time) and a Strimzi
that does not support the Kafka version the brokers run (the operator would refuse to
reconcile them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from tasks.engine.errors import UserError
from tasks.model.model import Inventory
from tasks.stack.components import apps, cert_manager, flux, kafka, kafka_rules, monitoring
from tasks.stack.context import context
from tasks.stack.render import Release
from tasks.upgrade import notes
from tasks.upgrade.facts import Deployed
from tasks.upgrade.versions import minor, newer


@dataclass(frozen=True)
class Pin:
    """One version the repository pins, and where it is deployed."""

    component: str  # "k3s", a release's name, "kafka"
    kind: Literal["k3s", "release", "kafka"]
    layer: str
    version: str
    source: str  # where the pin lives: "versions.cert_manager"
    namespace: str = ""  # the release's / the Kafka CR's
    name: str = ""
    chart: str = ""  # a release's chart name ("cert-manager"): helm lists "<chart>-<version>"
    #: The upstream chart release (None: our own chart, or not a release).
    upstream: Release | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Move:
    component: str
    where: str  # "node vps1", a release's namespace ("cert-manager"), "Kafka kafka/my-cluster"
    current: str
    wanted: str
    layer: str
    notes: notes.Notes
    namespace: str = ""  # a release's (what the health gate reads)
    name: str = ""
    chart: str = ""

    @property
    def release(self) -> str:
        """``namespace/name`` of the release (or the Kafka CR)."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Plan:
    moves: tuple[Move, ...]
    #: Pins with nothing deployed yet: deploy.all installs them, not upgrade.
    absent: tuple[str, ...] = ()

    def layers(self) -> list[str]:
        """The layers with a move, in deploy.all's order (tasks.deploy.LAYERS)."""
        from tasks.deploy import LAYERS

        moving = {m.layer for m in self.moves}
        return [name for name, _ in LAYERS if name in moving]

    def of(self, layer: str) -> list[Move]:
        return [m for m in self.moves if m.layer == layer]


def _release(component: str, layer: str, release: Release, source: str) -> Pin:
    return Pin(component, "release", layer, str(release.version), source, release.namespace,
               release.name, release.chart, release)


def pins(inv: Inventory) -> list[Pin]:
    """Every version the repository pins, in deploy order (the operator before Kafka)."""
    ctx = context(inv)
    (cm,) = cert_manager.render(ctx).releases
    out = [Pin("k3s", "k3s", "k3s.install", inv.versions.k3s, "versions.k3s"),
           _release("cert-manager", "ingress.certs", cm, "versions.cert_manager")]
    keys = {spec[0]: spec[3] for spec in (monitoring.KUBE_PROMETHEUS_STACK, monitoring.LOKI,
                                          monitoring.ALLOY)}
    out += [_release(r.name, "monitoring.install", r, f"versions.{keys[r.name]}")
            for r in monitoring.render(ctx).releases]
    out.append(_release("strimzi", "kafka.deploy", kafka.operator_release(ctx),
                        "versions.strimzi"))
    (cr,) = [d for d in kafka.documents(ctx) if d.kind == "Kafka"]
    out.append(Pin("kafka", "kafka", "kafka.deploy", str(cr.obj["spec"]["kafka"]["version"]),
                   "versions.kafka", cr.namespace or "", cr.name))
    out.append(_release("flux2", "flux.bootstrap", flux.release(ctx),
                        f"versions.flux {inv.versions.flux} (flux2 chart, tasks/stack/"
                        "components/flux.py CHART_VERSIONS)"))
    # our chart's version alone (its values need the apps' images; not the version)
    out.append(Pin("apps", "release", "apps.deploy", apps.chart_version(),
                   "charts/apps/Chart.yaml", inv.apps.namespace, apps.RELEASE, "apps"))
    return out


def chart_version(listed: str, chart: str) -> str:
    """``cert-manager-v1.13.1`` -> ``v1.13.1`` (helm list's "<chart>-<version>")."""
    return listed[len(chart) + 1:] if listed.startswith(f"{chart}-") else listed


def _notes(pin: Pin, current: str, everything: Sequence[Pin], inv: Inventory) -> notes.Notes:
    wanted = pin.version
    by_name = {p.component: p for p in everything}
    if pin.kind == "k3s":
        return notes.k3s(current, wanted)
    if pin.kind == "kafka":
        return notes.kafka(current, wanted, by_name["strimzi"].version)
    special = {"cert-manager": notes.cert_manager, "kube-prometheus-stack":
               notes.kube_prometheus_stack, "strimzi": notes.strimzi, "loki": notes.loki,
               "alloy": notes.alloy, "apps": notes.apps}
    if pin.component == "flux2":
        return notes.flux2(current, wanted, inv.versions.flux)
    return special[pin.component](current, wanted)


def _refusal(pin: Pin, where: str, current: str) -> str | None:
    k3s = pin.kind == "k3s"
    if newer(current, pin.version, k3s=k3s):
        return (f"{pin.component}: {where} runs {current}, newer than {pin.source}"
                f" {pin.version}: downgrades are refused (restore a backup instead)")
    if k3s:
        a, b = minor(current), minor(pin.version)
        if a and b and a[0] == b[0] and b[1] > a[1] + 1:
            return (f"k3s: {where} runs {current} and {pin.source} {pin.version} skips"
                    f" Kubernetes {a[0]}.{a[1] + 1}: Kubernetes upgrades one minor version"
                    f" at a time; pin a {a[0]}.{a[1] + 1} release first")
    return None


def make_plan(inv: Inventory, everything: Sequence[Pin], deployed: Deployed,
              nodes: Sequence[str] | None = None) -> Plan:
    """The moves from ``deployed`` to the pins; a UserError (one line per refusal) when
    one goes backwards or skips what must not be skipped. ``nodes``: only these nodes'
    K3s (``--host``); default: every node."""
    moves: list[Move] = []
    absent: list[str] = []
    refused: list[str] = []

    def add(pin: Pin, where: str, current: str, who: str = "", **extra: str) -> None:
        if current == pin.version:
            return
        problem = _refusal(pin, who or where, current)
        if problem:
            refused.append(problem)
            return
        moves.append(Move(pin.component, where, current, pin.version, pin.layer,
                          _notes(pin, current, everything, inv), **extra))

    for pin in everything:
        if pin.kind == "k3s":
            order = {h.name: i for i, h in enumerate(inv.hosts)}
            chosen = [n for n in deployed.nodes if nodes is None or n.name in nodes]
            for node in sorted(chosen, key=lambda n: (order.get(n.name, len(order)), n.name)):
                add(pin, f"node {node.name}", node.kubelet)
            if not deployed.nodes:
                absent.append("k3s (no node)")
        elif pin.kind == "release":
            state = deployed.releases.get((pin.namespace, pin.name))
            if state is None:
                absent.append(f"{pin.component} (no release {pin.namespace}/{pin.name})")
                continue
            where = pin.namespace if pin.name == pin.component else f"{pin.namespace}/{pin.name}"
            add(pin, where, chart_version(state.chart, pin.chart),
                f"release {pin.namespace}/{pin.name}", namespace=pin.namespace, name=pin.name,
                chart=pin.chart)
        else:
            cr = deployed.kafka
            if cr is None:
                absent.append(f"kafka (no Kafka {pin.namespace}/{pin.name})")
                continue
            add(pin, f"Kafka {cr.namespace}/{cr.name}", cr.status_version or cr.spec_version,
                namespace=pin.namespace, name=pin.name)
    refused += _strimzi_support(everything, moves, deployed)
    if refused:
        raise UserError(refused[0], lines=refused)
    return Plan(tuple(moves), tuple(absent))


def _strimzi_support(everything: Sequence[Pin], moves: Sequence[Move],
                     deployed: Deployed) -> list[str]:
    """A Strimzi move to an operator that cannot run the Kafka version the brokers run:
    the new operator would refuse the cluster, so Kafka moves first (with the current
    operator) to a version both support."""
    strimzi = next((m for m in moves if m.component == "strimzi"), None)
    cr = deployed.kafka
    if strimzi is None or cr is None:
        return []
    known = kafka_rules.STRIMZI.get(strimzi.wanted)
    running = cr.status_version or cr.spec_version
    if known is None or not running or running in known.kafka_versions:
        return []
    return [f"strimzi: {strimzi.wanted} does not support Kafka {running}, which"
            f" {cr.namespace}/{cr.name} runs (it supports"
            f" {', '.join(known.kafka_versions)}): first move versions.kafka to one both"
            f" {strimzi.current} and {strimzi.wanted} support, keeping versions.strimzi"
            f" {strimzi.current}, then upgrade Strimzi"]
