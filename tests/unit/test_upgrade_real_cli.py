"""inv upgrade's own kubectl and helm command lines, run by the real binaries (kubectl
1.33.9, helm 4.1.4 and 3.17.2) against a kubeconfig whose API is a closed port: each must
fail connecting; a usage error (unknown flag, wrong arguments) is a bug in the line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tasks.upgrade import apply, crds, facts
from tests.standins.harness import chart_archive
from tests.standins.standin_common import parse_kinds
from tests.unit.cluster_catalog import RELEASE, fact_argv, planned_commands
from tests.unit.test_real_cli_argv import cases, check, kubeconfig

__all__ = ["kubeconfig"]  # the fixture, shared with test_real_cli_argv


def test_the_crds_step_is_accepted_by_the_real_cli(kubeconfig: Path, tmp_path: Path) -> None:
    (kind,) = parse_kinds(["example.io/v1 Widget widgets ns"])
    archive = chart_archive(tmp_path, "probe", "1.0.0", crds=[kind.crd()])
    for label, _helm, tools in cases():
        env = {**os.environ, **tools.env(kubeconfig)}
        step = crds.crd_step(tools, RELEASE, lambda r: archive)
        assert step is not None
        commands = planned_commands(step)
        # (the catalog's facts also have an object Flux owns: annotate asks it to reconcile)
        assert [c.argv[1:3] for c in commands] == [("annotate", "--overwrite"),
                                                   ("apply", "--server-side"),
                                                   ("wait", "--for=condition=Established")]
        for fact in step.facts():
            argv, stdin = fact_argv(fact)
            proc = subprocess.run(argv, input=stdin, env=env, capture_output=True,
                                  timeout=120, check=False)
            check(label, " ".join(argv)[:200], proc)
        for command in commands:
            proc = subprocess.run(list(command.argv), input=command.stdin, env=env,
                                  capture_output=True, timeout=120, check=False)
            check(label, command.shown(), proc)


def test_upgrade_facts_and_rollback_are_accepted_by_the_real_cli(kubeconfig: Path) -> None:
    seen = []
    for label, _helm, tools in cases():
        env = {**os.environ, **tools.env(kubeconfig)}
        lines = [fact.command for fact in (
            facts.nodes_fact(tools), facts.releases_fact(tools),
            facts.kafka_fact(tools, "kafka", "my-cluster"),
            facts.deployments_fact(tools, "cert-manager"))]
        for line in lines:
            proc = subprocess.run(["sh", "-c", line], env=env, capture_output=True,
                                  timeout=120, check=False)
            check(label, line, proc)
        rollback = apply.rollback_command(tools, "cert-manager", "cert-manager", 1, 600)
        proc = subprocess.run(list(rollback.argv), env=env, capture_output=True, timeout=120,
                              check=False)
        check(label, rollback.shown(), proc)
        seen.append((label, rollback.argv[1:]))
    assert seen == [
        ("helm 4.1.4", ("rollback", "cert-manager", "1", "-n", "cert-manager", "--wait",
                        "--timeout=600s")),
        ("helm 3.17.2", ("rollback", "cert-manager", "1", "-n", "cert-manager", "--wait",
                         "--timeout=600s"))]
