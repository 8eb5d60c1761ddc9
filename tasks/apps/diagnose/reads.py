"""The reads of ``apps.diagnose``, through the cluster target, and the task's run.

One batch of three kubectl calls reads everything but the logs: our pods (selected by
the labels charts/apps puts on every pod: ``app.kubernetes.io/part-of`` and the
release's ``app.kubernetes.io/instance``), every event of the namespace (one read
serves every pod, its PVCs and the ReplicaSets, fewer calls than one per pod), and what
Secrets, ConfigMaps and PVCs exist (names and keys only, see refs.py). A second batch
reads ``logs --previous`` of the containers that restarted, and only those.

A read that fails (API unreachable, Unauthorized, Forbidden) is one error line: never
"all healthy". A previous log that cannot be read is said in the evidence instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

import yaml

from tasks.apps.diagnose import pods as pods_mod
from tasks.apps.diagnose import refs, report
from tasks.apps.diagnose.causes import Context, Finding, diagnose, no_pod
from tasks.apps.diagnose.logs import LogLines, select
from tasks.apps.diagnose.pods import Event, Pod
from tasks.cli import Session
from tasks.cluster.kube import ClusterFactError, Tools, api_error
from tasks.cluster.steps import read
from tasks.engine.errors import UserError, error_tail
from tasks.engine.facts import Fact, Raw
from tasks.engine.shell import cmd
from tasks.engine.target import Target, gather
from tasks.stack import sops
from tasks.stack.components.apps import RELEASE
from tasks.stack.workloads import APP_KEYS, app_name

T = TypeVar("T")
SELECTOR = f"app.kubernetes.io/part-of=k3s-vps-platform,app.kubernetes.io/instance={RELEASE}"
APPS = tuple(app_name(k) for k in APP_KEYS)
LOG_TAIL = 50
LOG_BYTES = 64 * 1024


def _checked(what: str, parse: Callable[[str], T]) -> Callable[[Raw], T]:
    def check(raw: Raw) -> T:
        if raw.rc != 0:
            raise ClusterFactError(api_error(raw.stderr, what)
                                   or f"{what}: kubectl exit {raw.rc}: {error_tail(raw.stderr)}")
        return parse(raw.stdout)
    return check


def pods_fact(tools: Tools, namespace: str) -> Fact[list[Pod]]:
    return Fact(f"apps:pods:{namespace}",
                cmd(tools.kubectl, "get", "pods", "-n", namespace, "-l", SELECTOR, "-o", "json"),
                _checked(f"reading the pods of namespace {namespace}",
                         lambda out: pods_mod.pods(json.loads(out or "{}"))))


def events_fact(tools: Tools, namespace: str) -> Fact[list[Event]]:
    return Fact(f"apps:events:{namespace}",
                cmd(tools.kubectl, "get", "events", "-n", namespace, "-o", "json"),
                _checked(f"reading the events of namespace {namespace}",
                         lambda out: pods_mod.events(json.loads(out or "{}"))))


def objects_fact(tools: Tools, namespace: str) -> Fact[refs.Objects]:
    return Fact(f"apps:objects:{namespace}",
                cmd(tools.kubectl, "get", refs.KINDS, "-n", namespace,
                    "-o", f"go-template={refs.TEMPLATE}"),
                _checked(f"reading the Secrets, ConfigMaps and PVCs of namespace {namespace}",
                         refs.parse))


def _log(raw: Raw) -> LogLines:
    if raw.rc != 0:  # not kept any more, the node's kubelet unreachable...: evidence
        return LogLines(unavailable=error_tail(raw.stderr))
    return select(raw.stdout)


def log_fact(tools: Tools, namespace: str, pod: str, container: str) -> Fact[LogLines]:
    return Fact(f"apps:log:{namespace}/{pod}/{container}",
                cmd(tools.kubectl, "logs", pod, "-n", namespace, "-c", container, "--previous",
                    f"--tail={LOG_TAIL}", f"--limit-bytes={LOG_BYTES}"), _log)


def secret_files(secrets_dir: Path = sops.SECRETS_DIR) -> dict[str, str]:
    """Which secrets/ file holds each of our Secrets: ``{"app-config": "secret-app"}``,
    from the templates (names with a placeholder are skipped)."""
    out: dict[str, str] = {}
    for path in sops.templates(secrets_dir):
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError):
            continue
        for doc in docs:
            name = pods_mod.text(pods_mod.obj(pods_mod.obj(doc).get("metadata")).get("name"))
            if name and "${" not in name:
                out[name] = sops.stem(path)
    return out


@dataclass(frozen=True)
class Selection:
    pods: list[Pod]  # the pods to diagnose
    apps: list[str]  # the apps whose having no pod at all is a finding
    examined: int  # pods of ours looked at


def choose(found: list[Pod], name: str | None, namespace: str) -> Selection:
    """The pods of ours that are not Ready (terminating ones aside), or those of the app
    or pod ``name``, Ready or not."""
    live = [p for p in found if not p.terminating]
    if not name:
        return Selection([p for p in live if not p.ready], list(APPS), len(live))
    chosen = [p for p in found if name in (p.name, p.app)]
    if not chosen and name not in APPS:
        ours = ", ".join(p.name for p in live) or "none"
        raise UserError(f"no app or pod of ours named {name} in namespace {namespace}"
                        f" (apps: {', '.join(APPS)}; pods: {ours})")
    return Selection(chosen, [name] if name in APPS else [], len(chosen))


def restarted(selection: Selection) -> list[tuple[str, str]]:
    """(pod, container) of the chosen pods' containers that restarted: only their
    previous log exists, and only it tells why the last run ended."""
    return [(p.name, c.name) for p in selection.pods for c in p.containers if c.restarts > 0]


def conclude(selection: Selection, found: list[Pod], events: list[Event],
             objects: refs.Objects, logs: Mapping[tuple[str, str], LogLines],
             files: Mapping[str, str]) -> list[Finding]:
    ctx = Context(events, objects, logs, files)
    findings = [diagnose(p, ctx) for p in selection.pods]
    present = {p.app for p in found if not p.terminating}
    return findings + [no_pod(app, ctx) for app in selection.apps if app not in present]


def examine(target: Target, tools: Tools, namespace: str, name: str | None,
            files: Mapping[str, str]) -> tuple[list[Finding], int]:
    """Read (one batch, then one batch of previous logs), then conclude."""
    wanted = (pods_fact(tools, namespace), events_fact(tools, namespace),
              objects_fact(tools, namespace))
    facts = gather(target, wanted)
    found: list[Pod] = read(facts, wanted[0])
    events: list[Event] = read(facts, wanted[1])
    objects: refs.Objects = read(facts, wanted[2])
    selection = choose(found, name, namespace)
    logs: dict[tuple[str, str], LogLines] = {}
    keys = restarted(selection)
    if keys:
        log_facts = {key: log_fact(tools, namespace, *key) for key in keys}
        read_logs = gather(target, log_facts.values())
        logs = {key: read(read_logs, fact) for key, fact in log_facts.items()}
    return conclude(selection, found, events, objects, logs, files), selection.examined


def run(session: Session, name: str | None, as_json: bool, out: TextIO | None = None) -> int:
    """``apps.diagnose``: print the findings; 0 when every pod is Ready, else 1."""
    from tasks.cluster import access

    out = out or sys.stdout
    namespace = session.inventory.data.apps.namespace
    files = secret_files()
    with access.cluster(session) as target:
        try:
            findings, examined = examine(target, target.tools, namespace, name, files)
        finally:
            session.summary.add_round_trips(target.name, target.round_trips)
    if as_json:
        print(report.as_json(findings), file=out)
    else:
        for line in report.text(findings, namespace, examined):
            print(line, file=out)
    return 0 if all(f.ok for f in findings) else 1
