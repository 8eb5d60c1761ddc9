"""One likely cause per pod, in plain words, with what to do; then the evidence.

The order is the order in which failures hide each other: a pod that cannot be
scheduled has no container state; a container that cannot be configured or pulled never
ran; a run that ended OOMKilled says so before its exit code; a kubelet that kills a
container for a failing probe leaves exit code 137 or 143, which the probe explains;
only then does the exit code itself speak.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.apps.diagnose import refs
from tasks.apps.diagnose.logs import LogLines, select
from tasks.apps.diagnose.pods import Container, Event, Pod, about
from tasks.apps.diagnose.refs import Objects, Problem
from tasks.engine.text import escape

CONFIG_ERRORS = ("CreateContainerConfigError", "CreateContainerError")
PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
               "RegistryUnavailable", "SignatureValidationFailed")
MAX_EVENTS = 8
VALUES = "helm-values/apps.yaml"
EXIT_MEANINGS = {
    0: "it exits on its own (exit code 0) and is started again: its command must keep"
       " running",
    1: "the application exits with an error (exit code 1)",
    2: "it exits with code 2 (usually a wrong argument or configuration)",
    126: "its command cannot be executed (exit code 126: not executable, or permission"
         " denied)",
    127: "its command is not found in the image (exit code 127)",
    134: "it aborts (SIGABRT, exit code 134; for Node.js usually \"JavaScript heap out of"
         " memory\")",
    137: "it is killed with SIGKILL (exit code 137) although not OOMKilled: a failed"
         " liveness probe, or memory pressure on the node",
    139: "it crashes with a segmentation fault (SIGSEGV, exit code 139)",
    143: "it is stopped with SIGTERM (exit code 143): the kubelet restarts it, usually"
         " after a failed liveness or startup probe",
}


@dataclass(frozen=True)
class Finding:
    pod: str  # "-" when the app has no pod at all
    app: str
    container: str | None
    cause: str
    ok: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"pod": self.pod, "app": self.app, "container": self.container,
                "cause": self.cause, "ok": self.ok, "evidence": self.evidence}


@dataclass(frozen=True)
class Context:
    """What a cause needs besides the pod: the namespace's events and objects, the
    previous logs read, and which secrets/ file holds each of our Secrets."""

    events: list[Event]
    objects: Objects
    logs: Mapping[tuple[str, str], LogLines] = field(default_factory=dict)
    secret_files: Mapping[str, str] = field(default_factory=dict)  # Secret -> secret-app


def focus(pod: Pod) -> Container | None:
    """The container that explains the pod: the first not Ready that is waiting, ended
    or restarted (an init container that completed is not it)."""
    for c in pod.containers:
        done = c.init and c.terminated is not None and c.terminated.exit_code == 0
        if not c.ready and not done and (c.waiting_reason or c.ended or c.restarts
                                         or c.running):
            return c
    return next((c for c in pod.containers if not c.ready and not c.init), None)


def diagnose(pod: Pod, ctx: Context) -> Finding:
    problems = refs.problems(pod.spec, ctx.objects)
    events = about(ctx.events, "Pod", pod.name)
    c = None if pod.unschedulable else focus(pod)
    logs = ctx.logs.get((pod.name, c.name)) if c else None
    ended = c.ended if c else None
    if (logs is None or logs.unavailable) and ended is not None and ended.message:
        # terminationMessagePolicy FallbackToLogsOnError (charts/apps): the log's tail
        logs = select(ended.message, "termination message")
    evidence = _evidence(pod, c, events, problems, logs)
    if pod.ready:
        return Finding(pod.name, pod.app, c.name if c else None, "Ready: nothing wrong found",
                       True, evidence)
    cause = _cause(pod, c, events, problems, logs, ctx)
    return Finding(pod.name, pod.app, c.name if c else None, cause, False, evidence)


def no_pod(app: str, ctx: Context) -> Finding:
    """An app of ours without a single pod: its ReplicaSet's FailedCreate says why (a
    PodSecurity violation, a quota), else it is not deployed (or scaled to zero)."""
    failed = sorted((e for e in ctx.events if e.kind == "ReplicaSet" and e.type == "Warning"
                     and e.name.startswith(f"{app}-")),
                    key=lambda e: e.last_seen, reverse=True)
    evidence = {"events": [{"type": e.type, "reason": e.reason, "count": e.count,
                            "last_seen": e.last_seen, "message": e.message}
                           for e in failed[:MAX_EVENTS]]}
    if failed:
        cause = f"its ReplicaSet cannot create pods: {escape(failed[0].message, 240)}"
    else:
        cause = (f"no pod of {app} exists: it is not deployed yet (inv apps.deploy), or"
                 " scaled to zero")
    return Finding("-", app, None, cause, False, evidence)


def _cause(pod: Pod, c: Container | None, events: list[Event], problems: list[Problem],
           logs: LogLines | None, ctx: Context) -> str:
    if pod.reason == "Evicted":
        return f"the node evicted it: {escape(pod.message, 200) or 'no message'}"
    if pod.unschedulable is not None:
        return _scheduling(pod, events, problems, ctx)
    if c is None:
        return f"it is {pod.phase or 'not Ready'}, and no container says why yet"
    mine = [e for e in events if e.container in (None, c.name)]
    if c.waiting_reason in CONFIG_ERRORS:
        return _config(c, problems, ctx)
    if c.waiting_reason in PULL_ERRORS:
        return _pull(pod, c, mine, problems, ctx)
    ended = c.ended
    if ended is not None and ended.reason == "OOMKilled":
        return _oom(pod, c)
    probe = _probe(c, mine)
    if probe and (ended is None or ended.exit_code in (0, 137, 143)):
        return probe  # a run that ended on its own (exit 1...) is explained by its code
    if ended is not None and (ended.exit_code or c.waiting_reason == "CrashLoopBackOff"):
        return _exit(ended.exit_code, logs)
    mount = next((e for e in mine if e.reason in ("FailedMount", "FailedAttachVolume")), None)
    if mount:
        return f"a volume cannot be mounted: {escape(mount.message, 200)}"
    if problems:
        return _references(problems, ctx)
    if c.waiting_reason:
        detail = f": {escape(c.waiting_message, 200)}" if c.waiting_message else ""
        return f"its container waits ({c.waiting_reason}{detail})"
    if c.running:
        return ("it runs but is not Ready, and no failing probe is recorded yet: it may"
                " still be starting")
    return f"it is {pod.phase or 'not Ready'}: {escape(pod.message, 200) or 'no reason given'}"


# Scheduling ------------------------------------------------------------------------------

def _scheduling(pod: Pod, events: list[Event], problems: list[Problem], ctx: Context) -> str:
    failed = next((e for e in events if e.reason == "FailedScheduling"), None)
    message = (failed.message if failed else "") or pod.unschedulable or ""
    shown = escape(message, 240)
    claims = [p for p in problems if p.kind == "PersistentVolumeClaim"]
    if claims or "persistentvolumeclaim" in message.lower():
        if claims:
            return _claim(claims[0], ctx)
        return f"its PersistentVolumeClaim is not bound ({shown})"
    found = list(dict.fromkeys(re.findall(r"Insufficient ([\w./-]*\w)", message)))
    if found:
        c = next((c for c in pod.containers if not c.init), None)
        asked = {"memory": c.memory_request, "cpu": c.cpu_request} if c else {}
        requests = ", ".join(f"{r} {asked[r]}" for r in found if asked.get(r))
        said = f" (it requests {requests})" if requests else ""
        return (f"no node has enough free {' and '.join(found)} for it{said}: lower"
                f" resources.requests in {VALUES}, or free or add capacity")
    taint = re.search(r"untolerated taint (\{[^}]*\})", message)
    if taint:
        return (f"no node accepts it: they carry the taint {escape(taint[1], 120)}, which it"
                " does not tolerate (kubectl describe node says why the taint is there)")
    if "affinity" in message or "node selector" in message:
        return f"no node matches its node selector or affinity ({shown})"
    return f"it cannot be scheduled: {shown or 'no reason recorded'}"


def _claim(problem: Problem, ctx: Context) -> str:
    if problem.missing_object:
        return (f"its PersistentVolumeClaim {problem.name} does not exist: create it (or"
                " fix the claim's name in the pod's volumes)")
    said = about(ctx.events, "PersistentVolumeClaim", problem.name)
    latest = said[0] if said else None
    why = escape(latest.message, 200) if latest else "no event explains it"
    if latest and "storageclass" in latest.message.lower() and "not found" in latest.message:
        return (f"its PersistentVolumeClaim {problem.name} stays {problem.state}: the storage"
                f" class {problem.storage_class or '(none)'} does not exist ({why}): use"
                " local-path, the class K3s provides")
    if not problem.storage_class:
        return (f"its PersistentVolumeClaim {problem.name} stays {problem.state}: it names no"
                f" storage class and no volume matches it ({why}); set storageClassName:"
                " local-path")
    return f"its PersistentVolumeClaim {problem.name} stays {problem.state}: {why}"


# Configuration and references ----------------------------------------------------------

def _apply_hint(name: str, ctx: Context, *, key: str | None = None) -> str:
    stem = ctx.secret_files.get(name)
    if stem is None:
        return f"create it in the namespace ({'add the key' if key else 'or fix the name'})"
    if key:
        return f"set it with inv secrets.edit {stem}, then apply it with inv apps.deploy"
    return (f"apply it with inv apps.deploy (from secrets/{stem}.sops.yaml; inv secrets.init"
            " creates the file)")


def _references(problems: list[Problem], ctx: Context) -> str:
    p = next((p for p in problems if p.kind in ("Secret", "ConfigMap")), problems[0])
    needs = f", which {p.used_by[0]} needs" if p.used_by else ""
    if p.key is not None:
        fix = _apply_hint(p.name, ctx, key=p.key) if p.kind == "Secret" else \
            f"add the key to ConfigMap {p.name}"
        return f"{p.kind} {p.name} has no key {p.key}{needs}: {fix}"
    if p.kind == "Secret":
        return f"Secret {p.name} does not exist{needs}: {_apply_hint(p.name, ctx)}"
    if p.kind == "ConfigMap":
        return f"ConfigMap {p.name} does not exist{needs}: create it in the namespace"
    return p.text()


_MISSING_KEY = re.compile(r"couldn't find key (\S+) in (Secret|ConfigMap) [^/\s]+/(\S+)")
_MISSING_OBJECT = re.compile(r"(secret|configmap)s? \"([^\"]+)\" not found")


def _config(c: Container, problems: list[Problem], ctx: Context) -> str:
    """CreateContainerConfigError: the kubelet's message names the missing Secret,
    ConfigMap or key; the references read now say what is missing."""
    if problems and any(p.kind in ("Secret", "ConfigMap") for p in problems):
        return _references(problems, ctx)
    message = c.waiting_message
    key = _MISSING_KEY.search(message)
    if key:
        problem = Problem(key[2], key[3], key[1], ())
        return _references([problem], ctx)
    gone = _MISSING_OBJECT.search(message)
    if gone:
        kind = "Secret" if gone[1] == "secret" else "ConfigMap"
        return _references([Problem(kind, gone[2], None, ())], ctx)
    return f"its container cannot be configured: {escape(message, 200) or c.waiting_reason}"


# Images -------------------------------------------------------------------------------

_DENIED = ("401 unauthorized", "403 forbidden", "unauthorized", "denied", "authorization failed",
           "failed to authorize")
_NOT_FOUND = (": not found", "manifest unknown", "name unknown", "notfound")
_UNREACHABLE = ("no such host", "i/o timeout", "connection refused", "network is unreachable",
                "registry is unavailable", "tls handshake timeout")


def _pull(pod: Pod, c: Container, events: list[Event], problems: list[Problem],
          ctx: Context) -> str:
    pulls = [e.message for e in events if e.message.startswith("Failed to pull image")]
    message = max([c.waiting_message, *pulls], key=len)
    low = message.lower()
    image = c.image or "its image"
    missing_secret = next((p for p in problems if p.kind == "image pull Secret"), None)
    setting = f"apps.{pod.app.replace('-', '_')}.image" if pod.app else "the image"
    if c.waiting_reason == "InvalidImageName":
        return f"its image name {escape(image, 120)} is invalid: fix {setting} in the inventory"
    if any(m in low for m in _NOT_FOUND):
        return (f"image {escape(image, 120)} does not exist in the registry (not found): check"
                f" the tag in {setting} of the inventory")
    if any(m in low for m in _DENIED):
        status = re.search(r"\b(40[13] \w+)", message)
        said = f" ({status[1]})" if status else " (access denied)"
        if missing_secret:
            return (f"the registry refuses image {escape(image, 120)}{said}, and the image pull"
                    f" Secret {missing_secret.name} does not exist:"
                    f" {_apply_hint(missing_secret.name, ctx)}")
        return (f"the registry refuses image {escape(image, 120)}{said}: check the token in the"
                " image pull Secret (a GitHub token with read:packages, inv secrets.edit"
                " secret-registry) and that the image exists")
    if any(m in low for m in _UNREACHABLE):
        return (f"the registry of {escape(image, 120)} cannot be reached from the node:"
                f" {escape(message, 200)}")
    return f"image {escape(image, 120)} cannot be pulled: {escape(message, 200)}"


# Memory, probes, exit codes -------------------------------------------------------------

def _oom(pod: Pod, c: Container) -> str:
    if c.memory_limit:
        return (f"it runs out of memory: it reached its memory limit of {c.memory_limit} and"
                f" was killed (OOMKilled, exit code 137): raise resources.limits.memory of"
                f" {pod.app or c.name} in {VALUES}, or find what uses the memory")
    return ("it was killed for lack of memory (OOMKilled) with no memory limit of its own:"
            " the node ran out of memory")


_PROBE_MESSAGE = re.compile(r"^(Startup|Liveness|Readiness) probe failed: (.*)$", re.S)


def _probe(c: Container, events: list[Event]) -> str | None:
    failing: dict[str, str] = {}
    for e in events:
        match = _PROBE_MESSAGE.match(e.message) if e.reason == "Unhealthy" else None
        if match:
            failing.setdefault(match[1].lower(), match[2].strip())
    kind = next((k for k in ("startup", "liveness", "readiness") if k in failing), None)
    if kind is None:
        return None
    detail = failing[kind]
    probe = c.probes.get(kind)
    action = probe.action if probe else f"its {kind} check"
    status = re.search(r"statuscode: (\d+)", detail)
    if status:
        result = f"{action} answers {status[1]}"
    elif "connection refused" in detail:
        result = f"nothing listens for {action} (connection refused)"
    elif "deadline exceeded" in detail or "timeout" in detail.lower():
        seconds = f" within {probe.timeout}s" if probe else ""
        result = f"{action} gets no answer{seconds}"
    else:
        result = f"{action} fails: {escape(detail, 160)}"
    then = ", so the kubelet restarts it" if kind != "readiness" else \
        ", so it gets no traffic"
    fix = (f"make the app answer it, or point the probe at what the app serves (probes in"
           f" {VALUES})")
    return f"its {kind} probe fails: {result}{then}: {fix}"


def _exit(code: int | None, logs: LogLines | None) -> str:
    if code is None:
        return "its container ended without an exit code"
    meaning = EXIT_MEANINGS.get(code)
    if meaning is None:
        meaning = (f"it is killed by signal {code - 128} (exit code {code})" if code > 128
                   else f"it exits with code {code}")
    if code == 1:
        said = logs.telling.strip() if logs and logs.telling else None
        meaning += f": {escape(said, 160)}" if said else ": see its last log lines"
    return meaning


# Evidence -------------------------------------------------------------------------------

def _evidence(pod: Pod, c: Container | None, events: list[Event], problems: list[Problem],
              logs: LogLines | None) -> dict[str, Any]:
    out: dict[str, Any] = {"phase": pod.phase, "ready": pod.ready}
    if pod.unschedulable is not None:
        out["unschedulable"] = pod.unschedulable
    if c is not None:
        out["restarts"] = c.restarts
        if c.waiting_reason:
            out["waiting"] = {"reason": c.waiting_reason, "message": c.waiting_message}
        ended = c.ended
        if ended is not None:
            out["last_termination"] = {"reason": ended.reason, "exit_code": ended.exit_code,
                                       "signal": ended.signal, "started_at": ended.started_at,
                                       "finished_at": ended.finished_at}
    out["events"] = [{"type": e.type, "reason": e.reason, "count": e.count,
                      "last_seen": e.last_seen, "message": e.message}
                     for e in events[:MAX_EVENTS]]
    out["references"] = [p.text() for p in problems]
    if logs is not None:
        out["logs"] = ({"unavailable": logs.unavailable} if logs.unavailable else
                       {"source": logs.source, "errors": list(logs.errors),
                        "tail": list(logs.tail)})
    return out
