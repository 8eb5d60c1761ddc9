"""nox sessions: lint, tests (unit, the default), e2e (lab VM), validate, bench."""

from __future__ import annotations

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
def e2e(session: nox.Session) -> None:
    """End-to-end tests on a lab VM (boots one; builds the image once, cached)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "e2e", "-p", "no:randomly", *session.posargs)
