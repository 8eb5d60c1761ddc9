"""Every cluster step the layers build, with facts that make each plan every command it
can: for the real-CLI check (test_real_cli_argv.py) and the stand-in runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.cli import Session
from tasks.cluster.kube import Tools
from tasks.cluster.steps import HelmReleaseStep, ObjectsStep
from tasks.engine.command import Command
from tasks.engine.facts import Facts, Raw
from tasks.engine.step import Step
from tasks.model.fields import build
from tasks.model.load import Loaded
from tasks.model.model import Inventory
from tasks.stack.render import Document, Release

NS = Document("t", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "probe"}})
SECRET = Document("t", {"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "probe", "namespace": "probe"},
                         "stringData": {"password": "not-a-real-secret"}})
APP_SECRET = Document("t", {"apiVersion": "v1", "kind": "Secret",
                             "metadata": {"name": "app-config", "namespace": "app"},
                             "stringData": {"MONGODB_URI": "not-a-real-secret"}})
RELEASE = Release("probe", "probe", "repo", "https://example.invalid", "probe", "1.0.0",
                  "helm-values/probe.yaml", {"a": 1})


@dataclass
class ToolsTarget:
    """Enough of a cluster target for building the layers' steps."""

    tools: Tools


def session() -> Session:
    from tests.unit.platform_ctx import DEFAULT

    inv, errors = build(Inventory, DEFAULT)
    assert errors == [], errors
    return Session(Loaded(inv, Path("/nonexistent/inventory.yaml")))


def layer_steps(tools: Tools) -> list[Step]:
    """Every step of the cluster layers, as they are built for the default inventory."""
    from tasks import apps, flux, ingress, kafka, monitoring

    target: Any = ToolsTarget(tools)
    archive = lambda r: Path(f"/nonexistent/{r.chart}-{r.version}.tgz")  # noqa: E731
    return [*ingress.steps(session(), target, archive=archive),
            *flux.steps(session(), target, [SECRET], archive=archive),
            # our own chart from its directory, as apps.deploy installs it
            *apps.steps(session(), target, [APP_SECRET]),
            *kafka.steps(session(), target, [SECRET], archive=archive),
            *monitoring.steps(session(), target, [SECRET], archive=archive)]


def all_steps(tools: Tools) -> list[Step]:
    from tasks.cluster import kube

    waits = (kube.wait(tools, "namespace", "probe", None, "Ready", 5),
             kube.rollout_status(tools, "deployment", "probe", "probe", 5))
    return [*layer_steps(tools),
        ObjectsStep("probe", "probe objects", tools, [NS], waits=waits),
        ObjectsStep("probe-secret", "probe Secret", tools, [SECRET], secret=True),
        HelmReleaseStep("probe-release", "probe release", tools, RELEASE,
                        archive=lambda r: Path("/nonexistent/probe-1.0.0.tgz"),
                        then=(kube.wait(tools, "deployment", "probe", "probe", "Available", 5),)),
    ]


def _changed_raw(step: Step) -> dict[str, Raw]:
    """Facts under which ``step`` plans every kind of change it has."""
    out: dict[str, Raw] = {}
    for fact in step.facts():
        if fact.key.startswith("kubectl-diff:"):
            items: list[dict[str, Any]] = [
                {"key": "Namespace/-/probe", "state": "changed"},
                {"key": "Namespace/-/owned", "state": "changed",
                 "flux_owner": "flux-system/apps"}]
            out[fact.key] = Raw("".join(json.dumps(i) + "\n" for i in items), 1)
        elif fact.key == "helm-list":
            out[fact.key] = Raw("[]", 0)
        elif fact.key.startswith("cert-manager:issuance:"):  # no Certificate yet
            out[fact.key] = Raw('{"apiVersion": "v1", "items": [], "kind": "List"}', 0)
        elif fact.key == "cert-manager:api":
            out[fact.key] = Raw("", 1, "Error from server (InternalError): failed calling"
                                       " webhook \"webhook.cert-manager.io\"")
        elif fact.key == "prometheus:targets":
            out[fact.key] = Raw("", 1, 'Error from server (NotFound): services'
                                       ' "kube-prometheus-stack-prometheus" not found')
        else:
            out[fact.key] = Raw("", 1, "Error: release: not found")
    return out


#: Programs that run a command again until it succeeds: ``python PROGRAM SECONDS -- ARGV``.
RETRY_WRAPPERS = ("until.py", "monitoring/targets.py")


def planned_commands(step: Any) -> list[Command]:
    """The commands ``step`` plans when everything differs; a retry wrapper (until.py,
    the targets wait) is replaced by what it runs, once."""
    out = []
    for change in step.plan(Facts(_changed_raw(step))):
        for command in change.commands:
            if len(command.argv) > 1 and command.argv[1].endswith(RETRY_WRAPPERS):
                command = Command(command.argv[command.argv.index("--") + 1:], command.stdin,
                                  command.stdin_label, command.timeout)
            out.append(command)
    return out


def fact_argv(fact: Any) -> tuple[list[str], bytes]:
    """How to run a fact alone: its exec command, or its shell line."""
    if fact.exec is not None:
        return list(fact.exec.argv), fact.exec.stdin
    return ["sh", "-c", fact.command], b""
