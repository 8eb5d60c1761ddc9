"""The monitoring namespace's volumes: every PVC Bound, Prometheus's and Grafana's on
their StorageClass (spec sections 6, 7 and 11: 10Gi and 5Gi on local-path).

One read: ``kubectl get persistentvolumeclaims,events -n monitoring -o json``, a List of
both kinds (the real kubectl 1.33.9 prints one ``"kind": "List"`` with each item's own
``kind``), so a claim that stays Pending is named with the reason of its latest event
(``WaitForFirstConsumer``, ``ProvisioningFailed: ...``) in the same fact. local-path binds
a claim only once a pod uses it (``WaitForFirstConsumer``), and Prometheus's claim only
exists once the operator has made its StatefulSet, so the waits are ``kubectl wait
--for=create`` then ``--for=jsonpath={.status.phase}=Bound``, each with its deadline; a
wait that times out is not the end of it: the verification names the claim and why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasks.cluster import kube
from tasks.cluster.kube import ClusterFactError, Tools
from tasks.cluster.steps import read
from tasks.engine.command import Command
from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.shell import cmd
from tasks.engine.step import Change, Step


@dataclass(frozen=True)
class Claim:
    name: str
    phase: str  # "Bound", "Pending", "Lost" ("" when the API set none yet)
    storage_class: str
    size: str  # spec.resources.requests.storage
    reason: str = ""  # "<reason>: <message>" of its latest event, when there is one


@dataclass(frozen=True)
class Expected:
    """A claim the charts make: its name, StorageClass and where that is set."""

    name: str
    storage_class: str
    source: str


def _stamp(event: dict[str, Any]) -> str:
    meta = event.get("metadata") or {}
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or meta.get("creationTimestamp") or "")


def parse_claims(raw: Raw, namespace: str) -> dict[str, Claim]:
    """PVCs by name, each with the reason of its latest event (a List of PVCs and Events,
    as ``kubectl get persistentvolumeclaims,events -o json`` prints it)."""
    if raw.rc != 0:
        problem = kube.api_error(raw.stderr, f"reading the PVCs of namespace {namespace}")
        if problem:
            raise ClusterFactError(problem)
        return {}
    items: list[dict[str, Any]] = (json.loads(raw.stdout or "{}") or {}).get("items") or []
    latest: dict[str, dict[str, Any]] = {}
    for item in sorted((i for i in items if i.get("kind") == "Event"), key=_stamp):
        about = item.get("involvedObject") or {}
        if about.get("kind") == "PersistentVolumeClaim" and about.get("name"):
            latest[str(about["name"])] = item
    out = {}
    for item in items:
        if item.get("kind") != "PersistentVolumeClaim":
            continue
        name = str((item.get("metadata") or {}).get("name", ""))
        spec = item.get("spec") or {}
        event = latest.get(name)
        reason = ""
        if event is not None:
            message = " ".join(str(event.get("message") or "").split())
            reason = f"{event.get('reason', '')}: {message}"[:240].rstrip(": ")
        out[name] = Claim(name, str((item.get("status") or {}).get("phase", "")),
                          str(spec.get("storageClassName") or ""),
                          str(((spec.get("resources") or {}).get("requests") or {})
                              .get("storage", "")), reason)
    return out


def claims_fact(tools: Tools, namespace: str) -> Fact[dict[str, Claim]]:
    return Fact(f"pvcs:{namespace}", cmd(tools.kubectl, "get", "persistentvolumeclaims,events",
                                         "-n", namespace, "-o", "json"),
                lambda raw: parse_claims(raw, namespace))


def claim_waits(tools: Tools, name: str, namespace: str, seconds: int, *,
                create: bool) -> list[Command]:
    """Wait for the claim to exist (when it does not yet), then to be Bound. Exit 1 (the
    deadline) is left to the verification, which says why."""
    out = []
    if create:
        out.append(Command((tools.kubectl, "wait", "--for=create", f"--timeout={seconds}s",
                            f"pvc/{name}", "-n", namespace), timeout=seconds + 30,
                           ok_codes=(0, 1)))
    out.append(Command((tools.kubectl, "wait", "--for=jsonpath={.status.phase}=Bound",
                        f"--timeout={seconds}s", f"pvc/{name}", "-n", namespace),
                       timeout=seconds + 30, ok_codes=(0, 1)))
    return out


class VolumesStep(Step):
    """Every PVC of ``namespace`` Bound; the ``expected`` ones there, on their class."""

    id = "monitoring-volumes"
    name = "monitoring: Prometheus and Grafana volumes Bound"

    def __init__(self, tools: Tools, namespace: str, expected: Sequence[Expected],
                 seconds: int = 300) -> None:
        self.tools, self.namespace, self.seconds = tools, namespace, seconds
        self.expected = tuple(expected)
        self.claims = claims_fact(tools, namespace)

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.claims]

    def _unbound(self, facts: Facts) -> list[tuple[str, Claim | None]]:
        claims: dict[str, Claim] = read(facts, self.claims)
        wrong = [f"PVC {e.name} is on StorageClass {claims[e.name].storage_class or '(none)'},"
                 f" not {e.storage_class} ({e.source}): it cannot change class; delete it to"
                 " have it made again (its data goes with it)"
                 for e in self.expected
                 if e.name in claims and claims[e.name].storage_class != e.storage_class]
        if wrong:
            raise UserError(wrong[0], lines=wrong)
        names = [e.name for e in self.expected] + sorted(set(claims) - {
            e.name for e in self.expected})
        return [(n, claims.get(n)) for n in names
                if claims.get(n) is None or claims[n].phase != "Bound"]

    def plan(self, facts: Facts) -> list[Change]:
        unbound = self._unbound(facts)
        if not unbound:
            return []
        commands = [c for name, claim in unbound for c in claim_waits(
            self.tools, name, self.namespace, self.seconds, create=claim is None)]
        return [Change(f"wait for {', '.join(describe(n, c) for n, c in unbound)}",
                       commands=tuple(commands))]

    def verify(self, facts: Facts) -> list[str]:
        return [problem(n, c, self.seconds) for n, c in self._unbound(facts)]


def describe(name: str, claim: Claim | None) -> str:
    """What a wait is for: ``PVC x Bound (Pending: WaitForFirstConsumer: waiting...)``."""
    if claim is None:
        return f"PVC {name} to be made and Bound (not there yet)"
    state = claim.phase or "no phase yet"
    return f"PVC {name} Bound ({state}" + (f": {claim.reason})" if claim.reason else ")")


def problem(name: str, claim: Claim | None, seconds: int) -> str:
    """``PVC x is still Pending after 300s: ProvisioningFailed: ...``."""
    if claim is None:
        return f"PVC {name} does not exist after {seconds}s (is the pod that claims it there?)"
    state = claim.phase or "without a phase"
    why = claim.reason or "no event about it"
    return f"PVC {name} is still {state} after {seconds}s: {why}"
