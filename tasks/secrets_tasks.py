"""secrets.*: the operator's age key, the SOPS-encrypted values, their checks and hook.

Thin tasks: the logic is in ``tasks/secrets/``. Every task first takes the
``STACK_SECRET_*`` inputs out of the environment (no child process inherits them).
"""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from tasks.cli import HELP, session, user_errors
from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT
from tasks.secrets import check as checks
from tasks.secrets import hook as hooks
from tasks.secrets import ops
from tasks.secrets.outcome import Report
from tasks.secrets.store import Paths
from tasks.secrets.values import Inputs, take_inputs_from_environment

ROOT = REPO_ROOT  # the repository the tasks work on (tests point it elsewhere)


def _show(report: Report, task_name: str) -> None:
    for line in report.lines():
        print(line)
    print(report.summary(task_name))


@task(help={"inventory": HELP["inventory"], "check": HELP["check"]})
def init(c: Context, inventory: str | None = None, check: bool = False) -> None:
    """Create your age key if there is none, write .sops.yaml, fill every secret in.

    Generated values (K3s token, Grafana and Kafka passwords...) are made once; values
    only you know (MongoDB and Redis URLs, the ghcr.io pull secret) are asked for once,
    not echoed, or read from $STACK_SECRET_<SECRET>__<KEY> without a terminal. Existing
    values are kept: a second run changes nothing.
    """
    with user_errors():
        given = take_inputs_from_environment()
        s = session(inventory, check=check, offline=True)
        report, stopped = ops.init(s.inventory, Paths(ROOT), Inputs(given), check_only=check)
        _show(report, "secrets.init")
        if stopped:
            raise UserError(stopped)


@task(help={"inventory": HELP["inventory"],
            "name": "the secret: secret-app, app or secrets/secret-app.sops.yaml"})
def edit(c: Context, name: str, inventory: str | None = None) -> None:
    """Edit one encrypted secret with sops in $SOPS_EDITOR / $EDITOR.

    Saved only when the result is still encrypted and its Secrets parse with the keys
    their template has; otherwise the file stays as it was.
    """
    with user_errors():
        take_inputs_from_environment()
        s = session(inventory, offline=True)
        for line in ops.edit(s.inventory, Paths(ROOT), name).lines():
            print(line)


@task(help={"inventory": HELP["inventory"], "check": HELP["check"],
            "data-key": "also give every file a new data key (sops --rotate); done anyway"
                        " for files a recipient was removed from"})
def rotate(c: Context, inventory: str | None = None, check: bool = False,
           data_key: bool = False) -> None:
    """Re-encrypt every secrets/*.sops.yaml for the inventory's secrets.age_recipients."""
    with user_errors():
        take_inputs_from_environment()
        s = session(inventory, check=check, offline=True)
        _show(ops.rotate(s.inventory, Paths(ROOT), data_key=data_key, check_only=check),
              "secrets.rotate")


@task(help={"inventory": HELP["inventory"],
            "staged": "only what the commit would add (the pre-commit hook): staged paths"
                      " and content; needs no inventory"})
def check(c: Context, inventory: str | None = None, staged: bool = False) -> None:
    """No secret in clear: every secret encrypted, none tracked in plaintext (exit 1 if so).

    Every *.sops.yaml encrypted for the recipients, every template encrypted, no key,
    kubeconfig or plaintext Secret tracked by git."""
    with user_errors():
        take_inputs_from_environment()
        if staged:
            problems, notes = checks.staged_problems(ROOT)
        else:
            s = session(inventory, offline=True)
            problems, notes = checks.repository_problems(
                Paths(ROOT), list(s.inventory.data.secrets.age_recipients))
    for line in [*notes, *problems]:
        print(line)
    if problems:
        print(f"secrets.check: {len(problems)} problem(s)")
        raise Exit(code=1)
    print("secrets.check: no secret in clear" + (" staged" if staged else ""))


@task(help={"check": HELP["check"],
            "force": "replace a pre-commit hook that is already there"})
def hook(c: Context, check: bool = False, force: bool = False) -> None:
    """Install the pre-commit hook running `inv secrets.check --staged`."""
    with user_errors():
        for line in hooks.install(ROOT, check=check, force=force).lines():
            print(line)


ns = Collection("secrets", init, edit, rotate, check, hook)
