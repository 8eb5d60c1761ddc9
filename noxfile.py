"""nox sessions: lint and tests (the defaults), helm3, e2e (lab VM)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, mypy --strict on tasks/, yamllint on our YAML."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "tasks", "tasks.py", "tests", "noxfile.py", "benchmarks")
    session.run("mypy")
    session.run("yamllint", "-s", ".")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and integration tests (no VM): ``nox -s tests -- -k inventory``."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "not e2e", *session.posargs)


@nox.session(python=PYTHON)
def helm3(session: nox.Session) -> None:
    """Our chart and the stack's validation again with helm 3.17.2 (helm 4 is the default)."""
    helm = Path(".cache/bin/helm-v32").resolve()
    if not helm.exists():
        session.error("helm 3 is missing: run .ci/install-helm v32")
    session.install("-e", ".[test]")
    session.run("pytest", "tests/unit", "-k", "apps or validate or helm", *session.posargs,
                env={"STACK_HELM": str(helm)})


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """End-to-end tests on a lab VM (boots one; builds the image once, cached)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "e2e and not nodes", "-p", "no:randomly", "--durations=15",
                *session.posargs)


@nox.session(python=PYTHON)
def e2e_nodes(session: nox.Session) -> None:
    """Two lab VMs as a server and an agent (not in CI: longer than its budget)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "nodes", "-p", "no:randomly", *session.posargs)
