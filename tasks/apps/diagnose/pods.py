"""Pods and events as the API returns them (``kubectl get ... -o json``), as plain values.

Only what a diagnosis needs is kept, and nothing is trusted to be there: a field that
is missing or of another type reads as absent. The field names are the core/v1 API's
(PodStatus, ContainerStatus, ContainerStateWaiting/Terminated, Event).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
PROBE_KINDS = ("startup", "readiness", "liveness")


def obj(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[JSON]:
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Termination:
    """A container's end: ``state.terminated`` or ``lastState.terminated``."""

    reason: str  # "Error", "OOMKilled", "Completed", "ContainerCannotRun"...
    exit_code: int | None
    signal: int | None
    started_at: str
    finished_at: str
    message: str  # the termination message (FallbackToLogsOnError: the log's tail)

    @classmethod
    def of(cls, data: Any) -> Termination | None:
        data = obj(data)
        if not data:
            return None
        return cls(text(data.get("reason")), number(data.get("exitCode")),
                   number(data.get("signal")), text(data.get("startedAt")),
                   text(data.get("finishedAt")), text(data.get("message")))


@dataclass(frozen=True)
class Probe:
    kind: str  # "startup", "readiness", "liveness"
    action: str  # "GET / on port http (3000)", "TCP connect to port 9092", "exec ..."
    path: str | None  # an HTTP probe's path
    timeout: int  # timeoutSeconds (the API's default: 1)


@dataclass(frozen=True)
class Container:
    name: str
    init: bool
    image: str
    ready: bool
    restarts: int
    waiting_reason: str  # "CrashLoopBackOff", "ImagePullBackOff", "ContainerCreating"...
    waiting_message: str
    running: bool
    terminated: Termination | None  # its current state, when it has ended
    last: Termination | None  # the previous instance's end
    memory_limit: str | None
    memory_request: str | None
    cpu_request: str | None
    probes: dict[str, Probe] = field(default_factory=dict)

    @property
    def ended(self) -> Termination | None:
        """The end that explains the current state: the current one, else the last."""
        return self.terminated or self.last


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    app: str  # its app.kubernetes.io/name label
    phase: str  # "Pending", "Running", "Failed"...
    reason: str  # the pod's own status reason ("Evicted")
    message: str
    ready: bool
    terminating: bool
    unschedulable: str | None  # the PodScheduled condition's message when False
    containers: tuple[Container, ...]  # init containers first
    spec: JSON  # for the references (tasks/apps/diagnose/refs.py)

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)


@dataclass(frozen=True)
class Event:
    type: str  # "Warning", "Normal"
    reason: str
    message: str
    count: int
    last_seen: str
    kind: str  # of the object it is about: "Pod", "PersistentVolumeClaim", "ReplicaSet"
    name: str
    container: str | None  # from involvedObject.fieldPath "spec.containers{name}"


def _probe(kind: str, data: JSON, ports: dict[str, int]) -> Probe | None:
    if not data:
        return None
    timeout = number(data.get("timeoutSeconds")) or 1

    def port_text(port: Any) -> str:
        if isinstance(port, str) and port in ports:
            return f"port {port} ({ports[port]})"
        return f"port {port}"

    http = obj(data.get("httpGet"))
    if http:
        path = text(http.get("path")) or "/"
        return Probe(kind, f"GET {path} on {port_text(http.get('port'))}", path, timeout)
    tcp = obj(data.get("tcpSocket"))
    if tcp:
        return Probe(kind, f"TCP connect to {port_text(tcp.get('port'))}", None, timeout)
    grpc = obj(data.get("grpc"))
    if grpc:
        return Probe(kind, f"gRPC health check on {port_text(grpc.get('port'))}", None,
                     timeout)
    command = obj(data.get("exec")).get("command")
    words = [w for w in command if isinstance(w, str)] if isinstance(command, list) else []
    return Probe(kind, "exec " + " ".join(words), None, timeout)


def _container(spec: JSON, status: JSON, init: bool) -> Container:
    ports = {text(p.get("name")): n for p in items(spec.get("ports"))
             if (n := number(p.get("containerPort"))) is not None and text(p.get("name"))}
    resources = obj(spec.get("resources"))
    limits, requests = obj(resources.get("limits")), obj(resources.get("requests"))
    state = obj(status.get("state"))
    waiting = obj(state.get("waiting"))
    probes = {k: p for k in PROBE_KINDS
              if (p := _probe(k, obj(spec.get(f"{k}Probe")), ports)) is not None}
    return Container(
        name=text(spec.get("name")), init=init,
        image=text(status.get("image")) or text(spec.get("image")),
        ready=status.get("ready") is True, restarts=number(status.get("restartCount")) or 0,
        waiting_reason=text(waiting.get("reason")), waiting_message=text(waiting.get("message")),
        running="running" in state,
        terminated=Termination.of(state.get("terminated")),
        last=Termination.of(obj(status.get("lastState")).get("terminated")),
        memory_limit=text(limits.get("memory")) or None,
        memory_request=text(requests.get("memory")) or None,
        cpu_request=text(requests.get("cpu")) or None, probes=probes)


def _condition(status: JSON, kind: str) -> JSON:
    return next((c for c in items(status.get("conditions")) if c.get("type") == kind), {})


def pod(data: JSON) -> Pod:
    meta, spec, status = obj(data.get("metadata")), obj(data.get("spec")), obj(data.get("status"))
    containers = []
    for init, specs, statuses in ((True, "initContainers", "initContainerStatuses"),
                                  (False, "containers", "containerStatuses")):
        known = {text(s.get("name")): s for s in items(status.get(statuses))}
        containers += [_container(c, known.get(text(c.get("name")), {}), init)
                       for c in items(spec.get(specs))]
    scheduled = _condition(status, "PodScheduled")
    return Pod(
        name=text(meta.get("name")), namespace=text(meta.get("namespace")),
        app=text(obj(meta.get("labels")).get("app.kubernetes.io/name")),
        phase=text(status.get("phase")), reason=text(status.get("reason")),
        message=text(status.get("message")),
        ready=_condition(status, "Ready").get("status") == "True",
        terminating=bool(meta.get("deletionTimestamp")),
        unschedulable=(text(scheduled.get("message")) or text(scheduled.get("reason"))
                       or "not scheduled") if scheduled.get("status") == "False" else None,
        containers=tuple(containers), spec=spec)


def pods(data: Any) -> list[Pod]:
    """The pods of a ``kubectl get pods -o json`` List, by name."""
    return sorted((pod(i) for i in items(obj(data).get("items"))), key=lambda p: p.name)


_FIELD_PATH = re.compile(r"^spec\.(?:initContainers|containers|ephemeralContainers)\{(.+)\}$")


def event(data: JSON) -> Event:
    """One core/v1 Event. Kubelet events carry count/firstTimestamp/lastTimestamp; events
    recorded through events.k8s.io (the scheduler's) carry eventTime and, once repeated,
    series {count, lastObservedTime}, with the legacy fields null."""
    involved, series = obj(data.get("involvedObject")), obj(data.get("series"))
    match = _FIELD_PATH.match(text(involved.get("fieldPath")))
    return Event(
        type=text(data.get("type")), reason=text(data.get("reason")),
        message=text(data.get("message")),
        count=number(series.get("count")) or number(data.get("count")) or 1,
        last_seen=(text(series.get("lastObservedTime")) or text(data.get("lastTimestamp"))
                   or text(data.get("eventTime")) or text(data.get("firstTimestamp"))
                   or text(obj(data.get("metadata")).get("creationTimestamp"))),
        kind=text(involved.get("kind")), name=text(involved.get("name")),
        container=match[1] if match else None)


def events(data: Any) -> list[Event]:
    """The events of a ``kubectl get events -o json`` List."""
    return [event(i) for i in items(obj(data).get("items"))]


def about(all_events: list[Event], kind: str, name: str) -> list[Event]:
    """The events about one object, Warnings first, then the most recent first."""
    mine = [e for e in all_events if e.kind == kind and e.name == name]
    return sorted(mine, key=lambda e: (e.type != "Warning", _descending(e.last_seen)))


def _descending(stamp: str) -> tuple[int, ...]:
    # RFC 3339 stamps sort as text; negate each character to sort newest first
    return tuple(-ord(c) for c in stamp)
