"""Every kubectl and helm line inv status runs, run by the real kubectl 1.33.9 and helm
4.1.4 / 3.17.2 against a closed port (tests/unit/test_real_cli_argv.py): each must fail
connecting, never on its usage. Its drift facts are the layers' own, checked there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tasks.cluster.kube import Tools, releases_fact
from tasks.engine.facts import Fact
from tasks.status import cluster_reads as reads
from tasks.status import drift
from tests.unit.cluster_catalog import ToolsTarget, session
from tests.unit.test_real_cli_argv import cases, check, kubeconfig  # noqa: F401 (fixture)


def status_facts(tools: Tools) -> list[Fact[object]]:
    return [reads.node_fact(tools), releases_fact(tools), reads.workloads_fact(tools),
            reads.claims_fact(tools), reads.certificates_fact(tools), reads.flux_fact(tools),
            reads.kafka_fact(tools, "kafka"), reads.usage_fact(tools, "vps1")]


def test_every_status_read_is_accepted_by_the_real_cli(kubeconfig: Path) -> None:  # noqa: F811
    seen = 0
    for label, _helm, tools in cases():
        env = {**os.environ, **tools.env(kubeconfig)}
        for fact in status_facts(tools):
            assert fact.exec is None
            proc = subprocess.run(["sh", "-c", fact.command], env=env, capture_output=True,
                                  timeout=120, check=False)
            check(label, fact.command, proc)
            seen += 1
    assert seen == 16


def test_the_drift_facts_are_the_layers_reads_only() -> None:
    """kubectl diff (a server-side dry run) and helm's list and get values: nothing else."""
    tools = Tools("/k", "/h")
    steps = drift.layer_steps(session(), ToolsTarget(tools))  # type: ignore[arg-type]
    heads = {" ".join(f.command.split(" | ")[-1].split()[:2]) for f in drift.facts_of(steps)}
    assert heads == {"/k diff", "/h list", "/h get"}, heads
