"""The recorded cases of tests/unit/fixtures/diagnose/, read the way apps.diagnose reads a
cluster: each fact's output as kubectl prints it, through the facts' own parsers.

refs.json holds the namespace's Secrets, ConfigMaps and PVCs as the API returns them;
kubectl prints them through our go-template, which the stand-in kubectl renders as the
real kubectl 1.33.9 does (checked in test_real_kubectl_diagnose.py).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tasks.apps.diagnose import reads
from tasks.apps.diagnose.causes import Finding
from tasks.cluster.kube import Tools
from tasks.engine.facts import Raw
from tests.standins.standin_kubectl import render_refs

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "diagnose"
TOOLS = Tools("/opt/bin/kubectl", "/opt/bin/helm")
NS = "app"
#: the kubelet's 400 for a previous instance it does not know, and kubectl's line for it
PREVIOUS_NOT_FOUND = 'previous terminated container "{c}" in pod "{p}" not found'
NO_PREVIOUS = "Error from server (BadRequest): " + PREVIOUS_NOT_FOUND


def load(case: str, name: str) -> Any:
    return json.loads((FIXTURES / case / name).read_text())


def outputs(case: str) -> dict[str, str]:
    """What kubectl prints for the three reads of ``case``."""
    d = FIXTURES / case
    return {"pods": (d / "pods.json").read_text(), "events": (d / "events.json").read_text(),
            "refs": render_refs(load(case, "refs.json")["items"])}


def log_outputs(case: str) -> dict[str, str]:
    return {p.name[len("logs-"):-len(".txt")]: p.read_text()
            for p in (FIXTURES / case).glob("logs-*.txt")}


def listing(items: list[dict[str, Any]]) -> str:
    """A List as kubectl 1.33.9 prints it (4-space indents, sorted keys)."""
    return json.dumps({"apiVersion": "v1", "items": items, "kind": "List",
                       "metadata": {"resourceVersion": ""}}, indent=4, sort_keys=True) + "\n"


def with_healthy(case: str) -> dict[str, str]:
    """``case``'s outputs with the Ready pods of the apps it does not break (the healthy
    case's), as a namespace where one app fails looks."""
    out = outputs(case)
    broken = {p["metadata"]["labels"]["app.kubernetes.io/name"]
              for p in load(case, "pods.json")["items"]}
    healthy = [p for p in load("healthy", "pods.json")["items"]
               if p["metadata"]["labels"]["app.kubernetes.io/name"] not in broken]
    out["pods"] = listing(healthy + load(case, "pods.json")["items"])
    return out


def edited_pods(case: str, change: Any) -> dict[str, str]:
    """``case``'s outputs with its pods List changed by ``change(items)``."""
    out = outputs(case)
    items = copy.deepcopy(load(case, "pods.json")["items"])
    change(items)
    out["pods"] = listing(items)
    return out


def findings(out: dict[str, str], name: str | None = None,
             logs: dict[str, str] | None = None) -> tuple[list[Finding], int]:
    """The findings apps.diagnose draws from these outputs (``logs``: the previous log
    of each container, by name; a container without one answers as kubectl does)."""
    found = reads.pods_fact(TOOLS, NS).parse(Raw(out["pods"], 0))
    events = reads.events_fact(TOOLS, NS).parse(Raw(out["events"], 0))
    objects = reads.objects_fact(TOOLS, NS).parse(Raw(out["refs"], 0))
    selection = reads.choose(found, name, NS)
    read_logs = {}
    for pod, container in reads.restarted(selection):
        text = (logs or {}).get(container)
        raw = Raw(text, 0) if text is not None else \
            Raw("", 1, NO_PREVIOUS.format(c=container, p=pod) + "\n")
        read_logs[(pod, container)] = reads.log_fact(TOOLS, NS, pod, container).parse(raw)
    return (reads.conclude(selection, found, events, objects, read_logs,
                           reads.secret_files()), selection.examined)


def case_findings(case: str, name: str | None = None) -> tuple[list[Finding], int]:
    return findings(outputs(case), name, log_outputs(case))
