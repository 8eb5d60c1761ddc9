"""``inv doctor``: the local preflight, one finding per check with its fix."""

from __future__ import annotations

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from tasks.cli import HELP, user_errors
from tasks.doctor import findings as report
from tasks.doctor.run import run
from tasks.engine.target import scrub_environment
from tasks.model import choose_path


@task(help={"inventory": HELP["inventory"], "host": HELP["host"],
            "json": "print a JSON list (check, status, detail, fix) instead"})
def doctor(c: Context, inventory: str | None = None, host: str | None = None,
           json: bool = False) -> None:
    """Local preflight, changing nothing: every finding with its fix.

    Python and the pinned tools, the inventory, each host's SSH port, host key, login
    and sudo, DNS for HTTP-01, ports 80/443, the age key and secrets/, the pulled charts.

    Exit 0 when nothing failed (warnings allowed), 1 when something did, 2 for a usage
    error (an unknown --host).
    """
    with user_errors():
        scrub_environment()  # no child process may inherit the sudo password
        path = choose_path(inventory)
        found = run(path, host)
    if json:
        print(report.as_json(found))
    else:
        print(f"doctor: {path}")
        for line in report.screen(found):
            print(line)
    code = report.exit_code(found)
    if code:
        raise Exit(code=code)
