"""lab.*: a Debian 12 VM on this machine (qemu) to run the tool against, no VPS needed."""

from __future__ import annotations

import os
import sys

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks.cli import user_errors
from tasks.engine.errors import UserError
from tasks.labvm import lab as labvm
from tasks.labvm.paths import DEFAULT_NAME
from tasks.labvm.status import status_lines

NAME_HELP = f"the VM's name (default: {DEFAULT_NAME})"


@task(help={
    "name": NAME_HELP,
    "port": "port on 127.0.0.1 forwarded to the VM's SSH (default: 2222, or the VM's last;"
            " a free one is picked when busy)",
    "fresh": "recreate the VM from the base image (new disk, keys and passwords)",
    "sudo-password": "admin's sudo asks for admin's password (default: passwordless sudo)",
    "accel": "auto (default: KVM when usable, else TCG), kvm or tcg; or $STACK_LAB_ACCEL",
    "timeout": "seconds to wait for SSH after starting qemu (default: 600)",
    "node": "also put the VM on the lab's nodes' network as node N (10.99.0.N), for"
            " clusters of several VMs (new VMs only)",
    "role": "its K3s role in the lab inventory: server (default) or agent",
})
def up(c: Context, name: str = DEFAULT_NAME, port: str | None = None, fresh: bool = False,
       sudo_password: bool = False, accel: str | None = None, timeout: int = 600,
       node: int = 0, role: str = "server") -> None:
    """Start the lab VM (building the Debian 12 base image once) and write its inventory."""
    with user_errors():
        # invoke passes an option without an int default as text
        if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise UserError(f"--port: expected a port 1-65535, got {port!r}")
        if not 0 <= node <= 250:
            raise UserError(f"--node: expected 1-250, got {node}")
        if role not in ("server", "agent"):
            raise UserError(f"--role: expected server or agent, got {role!r}")
        result = labvm.up(name, port=int(port) if port else None, fresh=fresh,
                          sudo_password=sudo_password, node_index=node, role=role,
                          accel=accel, timeout=float(timeout))
        timings = []
        if result.build_seconds is not None:
            timings.append(f"image build {result.build_seconds:.0f}s")
        if result.boot_seconds is not None:
            timings.append(f"boot to SSH {result.boot_seconds:.0f}s")
        print(f"{result.name} ready: admin@127.0.0.1 port {result.port}"
              + (f" ({', '.join(timings)})" if timings else ""))
        print("next:")
        for line in labvm.next_steps(result):
            print(f"  {line}")


@task(help={"name": NAME_HELP,
            "purge": "also remove the cached base image (the next lab.up rebuilds it)"})
def down(c: Context, name: str = DEFAULT_NAME, purge: bool = False) -> None:
    """Stop the lab VM (clean poweroff, else kill) and remove its disk and secrets."""
    with user_errors():
        labvm.down(name, purge=purge)


@task(help={"name": NAME_HELP})
def ssh(c: Context, name: str = DEFAULT_NAME) -> None:
    """Log in to the lab VM as admin; a command after -- runs there: inv lab.ssh -- uptime."""
    with user_errors():
        argv = labvm.ssh_argv(name, _remainder())
    sys.stdout.flush()
    os.execv(argv[0], argv)  # noqa: S606 - argv list, no shell: replace inv with ssh


@task
def status(c: Context) -> None:
    """Show the lab VMs (running or not, SSH port) and the cached base image's age."""
    with user_errors():
        for line in status_lines():
            print(line)


def _remainder() -> list[str]:
    """Words after ``--`` on the inv command line (Invoke keeps them only as one string)."""
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []


ns = Collection("lab", up, down, ssh, status)
