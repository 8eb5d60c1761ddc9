"""Policy for the workloads we own: what STACK.md and the issue claim about every pod.

Each rule looks at one pod template and yields ``(field path, problem)`` pairs; paths
are relative to the pod spec (``containers[0].resources.limits.memory``). A failure
reads ``<file>: <Kind> <name>: <path>: <problem> (rule: <rule>)``.

Rules: ``image`` (a tag other than ``latest``, or a sha256 digest), ``requests`` and
``limits`` (cpu and memory on every container, requests within limits), ``probes``
(readiness and liveness on long-running containers, unless the workload is annotated
``stack.io/probes-exempt: "<reason>"``), and the PodSecurity "restricted" profile of
Kubernetes 1.33: ``host-namespaces``, ``privileged``, ``host-path``, ``volume-types``,
``host-ports``, ``privilege-escalation``, ``run-as-non-root``, ``capabilities``,
``seccomp``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tasks.stack.render import Document
from tasks.stack.validate import quantity

PROBES_EXEMPT = "stack.io/probes-exempt"

# Where each workload kind keeps its pod spec.
POD_SPEC: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
LONG_RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                "persistentVolumeClaim", "projected", "secret"})
PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")  # as the inventory's image rule

Finding = tuple[str, str]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class Pod:
    """One workload's pod template, as the rules see it."""

    doc: Document
    spec: dict[str, Any]

    @property
    def long_running(self) -> bool:
        return self.doc.kind in LONG_RUNNING

    @property
    def annotations(self) -> dict[str, Any]:
        return _dict(_dict(self.doc.obj.get("metadata")).get("annotations"))

    @property
    def security(self) -> dict[str, Any]:
        return _dict(self.spec.get("securityContext"))

    def containers(self, lists: tuple[str, ...] = CONTAINER_LISTS
                   ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, container) of every container in ``lists``."""
        for key in lists:
            for i, c in enumerate(_list(self.spec.get(key))):
                yield f"{key}[{i}]", _dict(c)

    def serving(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Containers that run as long as the pod: app containers and sidecars."""
        for path, c in self.containers(("initContainers",)):
            if c.get("restartPolicy") == "Always":
                yield path, c
        yield from self.containers(("containers",))


def pod_of(doc: Document) -> Pod | None:
    """The pod template of a workload object, or None for other kinds."""
    keys = POD_SPEC.get(doc.kind)
    if keys is None:
        return None
    node: Any = doc.obj
    for key in keys:
        node = _dict(node).get(key)
    return Pod(doc, _dict(node))


# rules --------------------------------------------------------------------------------

def image(pod: Pod) -> Iterator[Finding]:
    for path, c in pod.containers():
        ref = c.get("image")
        if not isinstance(ref, str) or not ref:
            yield f"{path}.image", "missing"
            continue
        if "@" in ref:
            if not DIGEST.fullmatch(ref.split("@", 1)[1]):
                yield f"{path}.image", f"{ref}: a digest must be sha256:..."
            continue
        name = ref.rsplit("/", 1)[-1]
        if ":" not in name:
            yield f"{path}.image", f"{ref} has no tag (means :latest): pin a version or digest"
        elif name.rsplit(":", 1)[1] == "latest":
            yield f"{path}.image", f"{ref}: :latest is not pinned; use a version or digest"
        elif not name.rsplit(":", 1)[1]:
            yield f"{path}.image", f"{ref} has an empty tag: pin a version or digest"


def _resources(pod: Pod, section: str) -> Iterator[Finding]:
    for path, c in pod.containers(("initContainers", "containers")):
        values = _dict(_dict(c.get("resources")).get(section))
        for res in ("cpu", "memory"):
            where = f"{path}.resources.{section}.{res}"
            if res not in values:
                yield where, "missing"
            elif quantity.parse(values[res]) is None:
                yield where, f"{values[res]!r} is not a quantity"


def requests(pod: Pod) -> Iterator[Finding]:
    yield from _resources(pod, "requests")


def limits(pod: Pod) -> Iterator[Finding]:
    yield from _resources(pod, "limits")
    for path, c in pod.containers(("initContainers", "containers")):
        res = _dict(c.get("resources"))
        req, lim = _dict(res.get("requests")), _dict(res.get("limits"))
        for name in ("cpu", "memory"):
            r, m = quantity.parse(req.get(name)), quantity.parse(lim.get(name))
            if r is not None and m is not None and r > m:
                yield (f"{path}.resources.requests.{name}",
                       f"{req[name]} exceeds the limit {lim[name]}")


def _probe_findings(path: str, c: dict[str, Any]) -> Iterator[Finding]:
    ports = {p.get("name") for p in _list(c.get("ports")) if isinstance(p, dict)}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(kind)
        if not isinstance(probe, dict):
            continue
        handlers = [h for h in PROBE_HANDLERS if h in probe]
        if len(handlers) != 1:
            yield f"{path}.{kind}", "needs exactly one of " + ", ".join(PROBE_HANDLERS)
            continue
        port = _dict(probe[handlers[0]]).get("port")
        if isinstance(port, str) and port not in ports:
            yield (f"{path}.{kind}.{handlers[0]}.port",
                   f"no container port named {port!r}")


def probes(pod: Pod) -> Iterator[Finding]:
    for path, c in pod.containers(("initContainers", "containers")):
        yield from _probe_findings(path, c)
    if not pod.long_running:
        return
    if PROBES_EXEMPT in pod.annotations:
        reason = pod.annotations[PROBES_EXEMPT]
        if not (isinstance(reason, str) and reason.strip()):
            yield f'metadata.annotations["{PROBES_EXEMPT}"]', "must give the reason"
        return
    for path, c in pod.serving():
        for kind in ("readinessProbe", "livenessProbe"):
            if kind not in c:
                yield (f"{path}.{kind}", f"missing (or annotate the object"
                       f' {PROBES_EXEMPT}: "<reason>")')


def host_namespaces(pod: Pod) -> Iterator[Finding]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.spec.get(key) is True:
            yield key, "must not be true"


def privileged(pod: Pod) -> Iterator[Finding]:
    for path, c in pod.containers():
        if _dict(c.get("securityContext")).get("privileged") is True:
            yield f"{path}.securityContext.privileged", "must not be true"


def host_path(pod: Pod) -> Iterator[Finding]:
    for i, vol in enumerate(_list(pod.spec.get("volumes"))):
        if "hostPath" in _dict(vol):
            yield f"volumes[{i}].hostPath", "host paths are not allowed"


def volume_types(pod: Pod) -> Iterator[Finding]:
    for i, vol in enumerate(_list(pod.spec.get("volumes"))):
        for key in _dict(vol):
            if key != "name" and key != "hostPath" and key not in RESTRICTED_VOLUMES:
                yield f"volumes[{i}].{key}", "volume type not allowed by PodSecurity restricted"


def host_ports(pod: Pod) -> Iterator[Finding]:
    for path, c in pod.containers():
        for j, port in enumerate(_list(c.get("ports"))):
            if _dict(port).get("hostPort"):
                yield f"{path}.ports[{j}].hostPort", "host ports are not allowed"


def privilege_escalation(pod: Pod) -> Iterator[Finding]:
    for path, c in pod.containers():
        value = _dict(c.get("securityContext")).get("allowPrivilegeEscalation")
        if value is not False:
            yield (f"{path}.securityContext.allowPrivilegeEscalation",
                   "missing (must be false)" if value is None else "must be false")


def run_as_non_root(pod: Pod) -> Iterator[Finding]:
    pod_value = pod.security.get("runAsNonRoot")
    if pod_value is False:
        yield "securityContext.runAsNonRoot", "must not be false"
    if pod.security.get("runAsUser") == 0:
        yield "securityContext.runAsUser", "must not be 0 (root)"
    for path, c in pod.containers():
        sc = _dict(c.get("securityContext"))
        value = sc.get("runAsNonRoot", pod_value)
        if sc.get("runAsNonRoot") is False:
            yield f"{path}.securityContext.runAsNonRoot", "must be true"
        elif value is not True:
            yield (f"{path}.securityContext.runAsNonRoot",
                   "missing (set true here or in the pod securityContext)")
        if sc.get("runAsUser") == 0:
            yield f"{path}.securityContext.runAsUser", "must not be 0 (root)"


def capabilities(pod: Pod) -> Iterator[Finding]:
    for path, c in pod.containers():
        caps = _dict(_dict(c.get("securityContext")).get("capabilities"))
        if "ALL" not in _list(caps.get("drop")):
            yield f"{path}.securityContext.capabilities.drop", "must include ALL"
        extra = [a for a in _list(caps.get("add")) if a != "NET_BIND_SERVICE"]
        if extra:
            yield (f"{path}.securityContext.capabilities.add",
                   f"only NET_BIND_SERVICE may be added, not {', '.join(map(str, extra))}")


def seccomp(pod: Pod) -> Iterator[Finding]:
    allowed = ("RuntimeDefault", "Localhost")
    pod_type = _dict(pod.security.get("seccompProfile")).get("type")
    if pod_type is not None and pod_type not in allowed:
        yield ("securityContext.seccompProfile.type",
               f"{pod_type} is not RuntimeDefault or Localhost")
    for path, c in pod.containers():
        own = _dict(_dict(c.get("securityContext")).get("seccompProfile")).get("type")
        if own is not None and own not in allowed:
            yield (f"{path}.securityContext.seccompProfile.type",
                   f"{own} is not RuntimeDefault or Localhost")
        elif own is None and pod_type is None:
            yield (f"{path}.securityContext.seccompProfile.type",
                   "missing (set RuntimeDefault here or in the pod securityContext)")


@dataclass(frozen=True)
class Rule:
    name: str
    check: Callable[[Pod], Iterator[Finding]]


RULES: tuple[Rule, ...] = (
    Rule("image", image), Rule("requests", requests), Rule("limits", limits),
    Rule("probes", probes), Rule("host-namespaces", host_namespaces),
    Rule("privileged", privileged), Rule("host-path", host_path),
    Rule("volume-types", volume_types), Rule("host-ports", host_ports),
    Rule("privilege-escalation", privilege_escalation),
    Rule("run-as-non-root", run_as_non_root), Rule("capabilities", capabilities),
    Rule("seccomp", seccomp),
)


def check(doc: Document) -> list[str]:
    """Every rule's findings for one object (nothing for kinds that are not workloads)."""
    pod = pod_of(doc)
    if pod is None:
        return []
    return [f"{doc.label}: {path}: {problem} (rule: {rule.name})"
            for rule in RULES for path, problem in rule.check(pod)]
