"""Policy rules on our workloads, table-tested: each failure names object and rule."""

from __future__ import annotations

from typing import Any

import pytest
from validate_fixtures import DELETE, SOURCE, edit, find, valid_documents

from tasks.stack.render import Document
from tasks.stack.validate import policy
from tasks.stack.validate.quantity import parse

POD = ("spec", "template", "spec")
C0 = (*POD, "containers", 0)
DEPLOY = f"{SOURCE}: Deployment api-gateway"


def deployment(*edits: tuple[tuple[str | int, ...], Any]) -> Document:
    obj = find(valid_documents(), "Deployment").obj
    for path, value in edits:
        obj = edit(obj, path, value)
    return Document(SOURCE, obj)


def test_the_valid_workloads_pass_every_rule() -> None:
    docs = valid_documents()
    assert [p for d in docs for p in policy.check(d)] == []
    assert policy.check(find(docs, "Service")) == []


# (edits on the valid Deployment, expected lines after "<file>: Deployment api-gateway: ")
CASES: list[tuple[str, list[tuple[tuple[str | int, ...], Any]], list[str]]] = [
    ("latest tag", [((*C0, "image"), "ghcr.io/team-mercurious/api-gateway:latest")],
     ["containers[0].image: ghcr.io/team-mercurious/api-gateway:latest: :latest is not"
      " pinned; use a version or digest (rule: image)"]),
    ("no tag", [((*C0, "image"), "registry:5000/api-gateway")],
     ["containers[0].image: registry:5000/api-gateway has no tag (means :latest): pin a"
      " version or digest (rule: image)"]),
    ("empty tag", [((*C0, "image"), "ghcr.io/team-mercurious/api-gateway:")],
     ["containers[0].image: ghcr.io/team-mercurious/api-gateway: has an empty tag: pin a"
      " version or digest (rule: image)"]),
    ("registry port is not a tag", [((*C0, "image"), "registry:5000/api-gateway:1.2")], []),
    ("digest", [((*C0, "image"), "ghcr.io/x/y@sha256:" + "a" * 64)], []),
    ("tag and digest", [((*C0, "image"), "ghcr.io/x/y:latest@sha256:" + "a" * 64)], []),
    ("memory limit", [((*C0, "resources", "limits", "memory"), DELETE)],
     ["containers[0].resources.limits.memory: missing (rule: limits)"]),
    ("cpu request", [((*C0, "resources", "requests", "cpu"), DELETE)],
     ["containers[0].resources.requests.cpu: missing (rule: requests)"]),
    ("no resources", [((*C0, "resources"), DELETE)],
     [f"containers[0].resources.{s}.{r}: missing (rule: {s})"
      for s in ("requests", "limits") for r in ("cpu", "memory")]),
    ("request above limit", [((*C0, "resources", "requests", "memory"), "1Gi")],
     ["containers[0].resources.requests.memory: 1Gi exceeds the limit 512Mi (rule: limits)"]),
    ("bad quantity", [((*C0, "resources", "limits", "cpu"), "half")],
     ["containers[0].resources.limits.cpu: 'half' is not a quantity (rule: limits)"]),
    ("init container limits", [((*POD, "initContainers"), [
        {"name": "wait", "image": "busybox:1.36", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}])],
     ["initContainers[0].resources.limits.cpu: missing (rule: limits)",
      "initContainers[0].resources.limits.memory: missing (rule: limits)"]),
    ("no readiness probe", [((*C0, "readinessProbe"), DELETE)],
     ['containers[0].readinessProbe: missing (or annotate the object stack.io/probes-exempt:'
      ' "<reason>") (rule: probes)']),
    ("exempt with a reason", [((*C0, "readinessProbe"), DELETE),
                              ((*C0, "livenessProbe"), DELETE),
                              (("metadata", "annotations"),
                               {"stack.io/probes-exempt": "a queue worker, no port"})], []),
    ("exempt without a reason", [((*C0, "livenessProbe"), DELETE),
                                 (("metadata", "annotations"), {"stack.io/probes-exempt": ""})],
     ['metadata.annotations["stack.io/probes-exempt"]: must give the reason (rule: probes)']),
    ("probe on an unknown port", [((*C0, "livenessProbe", "httpGet", "port"), "htpp")],
     ["containers[0].livenessProbe.httpGet.port: no container port named 'htpp'"
      " (rule: probes)"]),
    ("probe without handler", [((*C0, "startupProbe"), {"failureThreshold": 30})],
     ["containers[0].startupProbe: needs exactly one of httpGet, tcpSocket, exec, grpc"
      " (rule: probes)"]),
    ("sidecar needs probes", [((*POD, "initContainers"), [
        {"name": "proxy", "image": "envoy:1.30", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                       "limits": {"cpu": "10m", "memory": "16Mi"}},
         "securityContext": {"allowPrivilegeEscalation": False,
                             "capabilities": {"drop": ["ALL"]}}}])],
     ['initContainers[0].readinessProbe: missing (or annotate the object'
      ' stack.io/probes-exempt: "<reason>") (rule: probes)',
      'initContainers[0].livenessProbe: missing (or annotate the object'
      ' stack.io/probes-exempt: "<reason>") (rule: probes)']),
    ("host network", [((*POD, "hostNetwork"), True)],
     ["hostNetwork: must not be true (rule: host-namespaces)"]),
    ("host pid", [((*POD, "hostPID"), True)],
     ["hostPID: must not be true (rule: host-namespaces)"]),
    ("privileged", [((*C0, "securityContext", "privileged"), True)],
     ["containers[0].securityContext.privileged: must not be true (rule: privileged)"]),
    ("host path", [((*POD, "volumes", 0), {"name": "tmp", "hostPath": {"path": "/tmp"}})],
     ["volumes[0].hostPath: host paths are not allowed (rule: host-path)"]),
    ("nfs volume", [((*POD, "volumes", 0), {"name": "tmp", "nfs": {"server": "x", "path": "/"}})],
     ["volumes[0].nfs: volume type not allowed by PodSecurity restricted (rule: volume-types)"]),
    ("host port", [((*C0, "ports", 0, "hostPort"), 3000)],
     ["containers[0].ports[0].hostPort: host ports are not allowed (rule: host-ports)"]),
    ("escalation unset", [((*C0, "securityContext", "allowPrivilegeEscalation"), DELETE)],
     ["containers[0].securityContext.allowPrivilegeEscalation: missing (must be false)"
      " (rule: privilege-escalation)"]),
    ("escalation true", [((*C0, "securityContext", "allowPrivilegeEscalation"), True)],
     ["containers[0].securityContext.allowPrivilegeEscalation: must be false"
      " (rule: privilege-escalation)"]),
    ("non-root unset", [((*POD, "securityContext", "runAsNonRoot"), DELETE)],
     ["containers[0].securityContext.runAsNonRoot: missing (set true here or in the pod"
      " securityContext) (rule: run-as-non-root)"]),
    ("non-root on the container", [((*POD, "securityContext", "runAsNonRoot"), DELETE),
                                   ((*C0, "securityContext", "runAsNonRoot"), True)], []),
    ("container overrides non-root", [((*C0, "securityContext", "runAsNonRoot"), False)],
     ["containers[0].securityContext.runAsNonRoot: must be true (rule: run-as-non-root)"]),
    ("root user", [((*POD, "securityContext", "runAsUser"), 0)],
     ["securityContext.runAsUser: must not be 0 (root) (rule: run-as-non-root)"]),
    ("capabilities kept", [((*C0, "securityContext", "capabilities"), {"drop": ["NET_RAW"]})],
     ["containers[0].securityContext.capabilities.drop: must include ALL"
      " (rule: capabilities)"]),
    ("capability added", [((*C0, "securityContext", "capabilities", "add"),
                           ["NET_BIND_SERVICE", "SYS_ADMIN"])],
     ["containers[0].securityContext.capabilities.add: only NET_BIND_SERVICE may be added,"
      " not SYS_ADMIN (rule: capabilities)"]),
    ("no seccomp", [((*POD, "securityContext", "seccompProfile"), DELETE)],
     ["containers[0].securityContext.seccompProfile.type: missing (set RuntimeDefault here or"
      " in the pod securityContext) (rule: seccomp)"]),
    ("seccomp on the container", [((*POD, "securityContext", "seccompProfile"), DELETE),
                                  ((*C0, "securityContext", "seccompProfile"),
                                   {"type": "Localhost", "localhostProfile": "p.json"})], []),
    ("unconfined", [((*POD, "securityContext", "seccompProfile", "type"), "Unconfined")],
     ["securityContext.seccompProfile.type: Unconfined is not RuntimeDefault or Localhost"
      " (rule: seccomp)"]),
]


# Each branch of each rule broken alone (the cases above cover the others).
EPHEMERAL = {"name": "debug", "image": "busybox:1.36",
             "securityContext": {"capabilities": {"drop": ["ALL"]}}}
CASES += [
    ("no image", [((*C0, "image"), DELETE)], ["containers[0].image: missing (rule: image)"]),
    ("empty image", [((*C0, "image"), "")], ["containers[0].image: missing (rule: image)"]),
    ("digest not sha256", [((*C0, "image"), "ghcr.io/x/y@md5:0123")],
     ["containers[0].image: ghcr.io/x/y@md5:0123: a digest must be sha256:... (rule: image)"]),
    ("truncated digest", [((*C0, "image"), "ghcr.io/x/y@sha256:abc")],
     ["containers[0].image: ghcr.io/x/y@sha256:abc: a digest must be sha256:..."
      " (rule: image)"]),
    ("uppercase digest", [((*C0, "image"), "ghcr.io/x/y@sha256:" + "A" * 64)],
     [f"containers[0].image: ghcr.io/x/y@sha256:{'A' * 64}: a digest must be sha256:..."
      " (rule: image)"]),
    ("bad request quantity", [((*C0, "resources", "requests", "memory"), "lots")],
     ["containers[0].resources.requests.memory: 'lots' is not a quantity (rule: requests)"]),
    ("cpu request above limit", [((*C0, "resources", "requests", "cpu"), "1")],
     ["containers[0].resources.requests.cpu: 1 exceeds the limit 500m (rule: limits)"]),
    ("no liveness probe", [((*C0, "livenessProbe"), DELETE)],
     ['containers[0].livenessProbe: missing (or annotate the object stack.io/probes-exempt:'
      ' "<reason>") (rule: probes)']),
    ("probe with two handlers", [((*C0, "readinessProbe", "tcpSocket"), {"port": 3000})],
     ["containers[0].readinessProbe: needs exactly one of httpGet, tcpSocket, exec, grpc"
      " (rule: probes)"]),
    ("host ipc", [((*POD, "hostIPC"), True)],
     ["hostIPC: must not be true (rule: host-namespaces)"]),
    ("host namespaces false", [((*POD, "hostIPC"), False), ((*POD, "hostPID"), False),
                               ((*POD, "hostNetwork"), False)], []),
    ("privileged init container", [((*POD, "initContainers"), [
        {"name": "init", "image": "busybox:1.36",
         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                       "limits": {"cpu": "10m", "memory": "16Mi"}},
         "securityContext": {"privileged": True, "allowPrivilegeEscalation": False,
                             "capabilities": {"drop": ["ALL"]}}}])],
     ["initContainers[0].securityContext.privileged: must not be true (rule: privileged)"]),
    ("ephemeral container escalation unset", [((*POD, "ephemeralContainers"), [EPHEMERAL])],
     ["ephemeralContainers[0].securityContext.allowPrivilegeEscalation: missing (must be"
      " false) (rule: privilege-escalation)"]),
    ("pod non-root false", [((*POD, "securityContext", "runAsNonRoot"), False)],
     ["securityContext.runAsNonRoot: must not be false (rule: run-as-non-root)",
      "containers[0].securityContext.runAsNonRoot: missing (set true here or in the pod"
      " securityContext) (rule: run-as-non-root)"]),
    ("container root user", [((*C0, "securityContext", "runAsUser"), 0)],
     ["containers[0].securityContext.runAsUser: must not be 0 (root) (rule: run-as-non-root)"]),
    ("no capabilities", [((*C0, "securityContext", "capabilities"), DELETE)],
     ["containers[0].securityContext.capabilities.drop: must include ALL"
      " (rule: capabilities)"]),
    ("NET_BIND_SERVICE added", [((*C0, "securityContext", "capabilities", "add"),
                                 ["NET_BIND_SERVICE"])], []),
    ("container seccomp unconfined", [((*C0, "securityContext", "seccompProfile"),
                                       {"type": "Unconfined"})],
     ["containers[0].securityContext.seccompProfile.type: Unconfined is not RuntimeDefault or"
      " Localhost (rule: seccomp)"]),
    ("host port zero is unset", [((*C0, "ports", 0, "hostPort"), 0)], []),
    ("configMap volume", [((*POD, "volumes", 0), {"name": "tmp", "configMap": {"name": "c"}})],
     []),
]


@pytest.mark.parametrize(("edits", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_rules(edits: list[tuple[tuple[str | int, ...], Any]], expected: list[str]) -> None:
    assert policy.check(deployment(*edits)) == [f"{DEPLOY}: {line}" for line in expected]


def test_every_rule_has_a_failing_case() -> None:
    named = {line.rsplit("(rule: ", 1)[1].rstrip(")") for c in CASES for line in c[2]}
    assert named == {r.name for r in policy.RULES}


def test_jobs_need_no_probes_but_everything_else() -> None:
    cron = find(valid_documents(), "CronJob")
    c0 = ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0)
    broken = Document(SOURCE, edit(cron.obj, (*c0, "image"), "ghcr.io/x/tools"))
    assert policy.check(cron) == []
    assert policy.check(broken) == [
        f"{SOURCE}: CronJob cleanup: containers[0].image: ghcr.io/x/tools has no tag"
        " (means :latest): pin a version or digest (rule: image)"]


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet", "Job"])
def test_other_workload_kinds_are_checked(kind: str) -> None:
    obj = {**find(valid_documents(), "Deployment").obj, "kind": kind}
    obj = edit(obj, (*C0, "resources"), DELETE)
    lines = policy.check(Document(SOURCE, obj))
    assert len(lines) == 4
    assert lines[0] == (f"{SOURCE}: {kind} api-gateway: containers[0].resources.requests.cpu:"
                        " missing (rule: requests)")


@pytest.mark.parametrize(("text", "value"), [
    ("100m", "0.1"), ("512Mi", str(512 * 2**20)), ("1Gi", str(2**30)), ("1.5", "1.5"),
    ("2k", "2000"), ("1e3", "1000"), (2, "2"), ("250u", "0.000250"),
])
def test_quantities(text: object, value: str) -> None:
    parsed = parse(text)
    assert parsed is not None and parsed == type(parsed)(value)


@pytest.mark.parametrize("text", ["half", "1Gb", "", None, True, "1.2.3"])
def test_bad_quantities(text: object) -> None:
    assert parse(text) is None
