"""What the Kubernetes API server refuses although the OpenAPI schema allows it.

The published schemas give types, not the server's validation: a selector that does not
match its pod template, port numbers out of range, port names that are not IANA service
names, duplicate container names, an HPA target type that does not exist. These are the
ones our kinds can hit; each yields ``(field path, problem)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tasks.stack.render import Document
from tasks.stack.validate.policy import CONTAINER_LISTS, POD_SPEC, pod_of

Finding = tuple[str, str]

_IANA_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PROTOCOLS = ("TCP", "UDP", "SCTP")
NODE_PORTS = (30000, 32767)  # K3s' default --service-node-port-range
HPA_TARGET_TYPES = ("Utilization", "Value", "AverageValue")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _port_number(path: str, value: Any, low: int = 1, high: int = 65535
                 ) -> Iterator[Finding]:
    if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
        yield path, f"must be between {low} and {high}; got {value}"


def _port_name(path: str, value: Any) -> Iterator[Finding]:
    if isinstance(value, str) and not (len(value) <= 15 and _IANA_NAME.match(value)
                                       and re.search("[a-z]", value) and "--" not in value):
        yield path, (f"{value!r} is not an IANA service name (at most 15 lowercase letters,"
                     " digits and '-', with a letter)")


def _protocol(path: str, value: Any) -> Iterator[Finding]:
    if value is not None and value not in PROTOCOLS:
        yield path, f"must be one of {', '.join(PROTOCOLS)}; got {value!r}"


def workload(doc: Document) -> Iterator[Finding]:
    """Selector against template labels; container names and ports."""
    pod = pod_of(doc)
    if pod is None:
        return
    keys = POD_SPEC[doc.kind]
    template: Any = doc.obj
    for key in keys[:-1]:
        template = _dict(template).get(key)
    labels = _dict(_dict(_dict(template).get("metadata")).get("labels"))
    spec = _dict(doc.obj.get("spec"))
    if doc.kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        selector = _dict(spec.get("selector"))
        wanted = _dict(selector.get("matchLabels"))
        if not wanted and not selector.get("matchExpressions"):
            yield "spec.selector", "must select pods (matchLabels or matchExpressions)"
        for key, value in wanted.items():
            if labels.get(key) != value:
                yield (f"spec.selector.matchLabels[{key!r}]", f"{value!r} does not match the"
                       f" pod template's label ({labels.get(key)!r}): the API refuses it")
    names: set[str] = set()
    prefix = ".".join(keys)
    for list_key in CONTAINER_LISTS:
        for i, c in enumerate(_list(pod.spec.get(list_key))):
            path = f"{prefix}.{list_key}[{i}]"
            name = _dict(c).get("name")
            if isinstance(name, str):
                if name in names:
                    yield f"{path}.name", f"duplicate container name {name!r}"
                elif not (len(name) <= 63 and _DNS_LABEL.match(name)):
                    yield f"{path}.name", f"{name!r} is not a DNS label"
                names.add(name)
            for j, port in enumerate(_list(_dict(c).get("ports"))):
                port = _dict(port)
                yield from _port_number(f"{path}.ports[{j}].containerPort",
                                        port.get("containerPort"))
                yield from _port_number(f"{path}.ports[{j}].hostPort", port.get("hostPort"))
                yield from _port_name(f"{path}.ports[{j}].name", port.get("name"))
                yield from _protocol(f"{path}.ports[{j}].protocol", port.get("protocol"))


def service(doc: Document) -> Iterator[Finding]:
    if doc.kind != "Service" or doc.api_version != "v1":
        return
    for i, port in enumerate(_list(_dict(doc.obj.get("spec")).get("ports"))):
        port = _dict(port)
        path = f"spec.ports[{i}]"
        yield from _port_number(f"{path}.port", port.get("port"))
        yield from _port_number(f"{path}.nodePort", port.get("nodePort"), *NODE_PORTS)
        target = port.get("targetPort")
        yield from _port_number(f"{path}.targetPort", target)
        yield from _port_name(f"{path}.targetPort", target)
        name = port.get("name")
        # A Service port's name is a DNS label (a container port's: an IANA name).
        if isinstance(name, str) and not (len(name) <= 63 and _DNS_LABEL.match(name)):
            yield f"{path}.name", (f"{name!r} is not a DNS label (at most 63 lowercase"
                                   " letters, digits and '-')")
        yield from _protocol(f"{path}.protocol", port.get("protocol"))


def autoscaler(doc: Document) -> Iterator[Finding]:
    if doc.kind != "HorizontalPodAutoscaler" or doc.api_version != "autoscaling/v2":
        return
    spec = _dict(doc.obj.get("spec"))
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield "spec.minReplicas", f"{low} is above maxReplicas {high}"
    for i, metric in enumerate(_list(spec.get("metrics"))):
        for source, body in _dict(metric).items():
            target = _dict(_dict(body).get("target"))
            kind = target.get("type")
            if kind is not None and kind not in HPA_TARGET_TYPES:
                yield (f"spec.metrics[{i}].{source}.target.type", f"must be one of"
                       f" {', '.join(HPA_TARGET_TYPES)}; got {kind!r}")


def disruption_budget(doc: Document) -> Iterator[Finding]:
    if doc.kind != "PodDisruptionBudget":
        return
    spec = _dict(doc.obj.get("spec"))
    if "minAvailable" in spec and "maxUnavailable" in spec:
        yield "spec", "minAvailable and maxUnavailable cannot both be set"


CHECKS = (workload, service, autoscaler, disruption_budget)


def check(doc: Document) -> list[str]:
    """``<path>: <problem>`` lines for one object."""
    return [f"{path}: {problem}" for fn in CHECKS for path, problem in fn(doc)]
