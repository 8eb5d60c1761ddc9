"""inv upgrade's own kubectl and helm command lines, run by the real binaries (kubectl
1.33.9, helm 4.1.4 and 3.17.2) against a kubeconfig whose API is a closed port: each must
fail connecting; a usage error (unknown flag, wrong arguments) is a bug in the line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tasks.upgrade import apply, facts
from tests.unit.test_real_cli_argv import cases, check, kubeconfig

__all__ = ["kubeconfig"]  # the fixture, shared with test_real_cli_argv


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
