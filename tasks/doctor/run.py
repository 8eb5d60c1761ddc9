"""Running every check in order; each one independent of the others' outcome.

Only the inventory gates: when it is invalid, the checks that need it are skipped with
that reason. An inventory whose only problems are the SSH key files or known_hosts
still gets every check but the login and sudo (which need those files).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tasks.cli import Session
from tasks.doctor import files, local, network, ssh
from tasks.doctor.findings import Finding, Status, fail, ok, skipped
from tasks.engine.errors import InventoryError, UserError
from tasks.model import Loaded, load
from tasks.model.model import Host
from tasks.repo import REPO_ROOT
from tasks.stack import charts
from tasks.tooling import pins as tool_pins
from tasks.tooling.catalog import TOOLS
from tasks.tooling.lookup import TOOLS_DIR, default_version


@dataclass(frozen=True)
class Env:
    """Where the checks look; tests point these elsewhere."""

    root: Path = REPO_ROOT
    tools_dir: Path = TOOLS_DIR
    charts_cache: Path = charts.CACHE
    charts_lock: Path = charts.LOCK
    resolve: network.Resolver = network.system_resolver
    python_requirement: Callable[[], str] = local.required_python
    port_timeout: float = network.PORT_TIMEOUT
    ssh_timeout: float = ssh.PORT_TIMEOUT
    web_ports: tuple[int, ...] = (80, 443)


@dataclass
class Inventory:
    """The inventory as far as it is valid: ``loaded`` offline, ``connectable`` with its
    key files and known_hosts checked too."""

    findings: list[Finding] = field(default_factory=list)
    loaded: Loaded | None = None
    connectable: bool = False


def read_inventory(path: Path) -> Inventory:
    out = Inventory()
    problems: list[str] = []
    try:
        out.loaded = load(path)
        out.connectable = True
    except InventoryError as exc:
        problems = exc.lines
    if problems:
        try:
            out.loaded = load(path, require_key_files=False)
        except InventoryError as exc:
            problems = exc.lines
    fix = (f"edit {path.name} (inventory.schema.json documents every key), then inv"
           " inventory.check") if path.is_file() else "pass -i PATH, or set $STACK_INVENTORY"
    out.findings = [fail("inventory", line, fix) for line in problems]
    if out.loaded is not None and out.connectable:
        inv = out.loaded.data
        out.findings = [ok("inventory", f"{path.name}: valid: {len(inv.hosts)} host(s),"
                           f" domain {inv.domain}")]
    return out


def _host_checks(loaded: Loaded, host: Host, connectable: bool, env: Env) -> list[Finding]:
    s = loaded.data.host.ssh
    ports = host.connect_ports(s.port)
    # A TCP connect is the kernel's answer, quick however loaded the host is: capped so a
    # dead address costs seconds. The handshake waits for sshd itself, which a slow host
    # answers late: it gets host.ssh.connect_timeout, as the tasks give it.
    port_finding, port = ssh.check_port(host.name, host.address, ports,
                                        min(float(s.connect_timeout), env.ssh_timeout))
    out = [port_finding]
    k3s_running: bool | None = None
    if port is None:
        why = "no SSH port answers"
        out += [skipped(f"{host.name} {c}", why) for c in ("host key", "login", "sudo")]
    else:
        out.append(ssh.check_host_key(host.name, host.address, port, ports, loaded.known_hosts,
                                      float(s.connect_timeout)))
        if out[-1].status is not Status.OK:
            out += [skipped(f"{host.name} {c}", "host key not verified") for c in
                    ("login", "sudo")]
        elif not connectable:
            out += [skipped(f"{host.name} {c}", "the inventory's key file or known_hosts is"
                            " not usable (see above)") for c in ("login", "sudo")]
        else:
            settings = Session(loaded).ssh_settings(host).on_port(port)
            access = ssh.check_access(host.name, settings)
            out += [access.login, access.sudo]
            k3s_running = access.k3s_running
    out.append(network.check_web_ports(host.name, host.address, k3s_running,
                                       env.port_timeout, env.web_ports))
    return out


def _safely(name: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """``check()``; should it raise, one failed finding instead: the others still run."""
    try:
        return check()
    except UserError as exc:
        return [fail(name, str(exc), "fix what it says, then run inv doctor again")]
    except Exception as exc:  # one check's crash must not hide the other findings
        return [fail(name, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "report it: a bug in inv doctor")]


def _key_and_secrets(loaded: Loaded, root: Path) -> list[Finding]:
    key_finding, key_file = files.check_age_key(loaded, root)
    return [key_finding, *files.check_secrets(loaded, key_file, root)]


def run(path: Path, only_host: str | None = None, env: Env | None = None) -> list[Finding]:
    """Every check, in order. Raises :class:`InventoryError` for an unknown ``only_host``
    (a usage error) when the inventory can tell."""
    env = env or Env()
    inventory = read_inventory(path)
    loaded = inventory.loaded
    hosts = list(loaded.data.hosts) if loaded else []
    if loaded and only_host:
        hosts = [loaded.host(only_host)]
    findings = _safely("python", lambda: [local.check_python(env.python_requirement())])
    versions = ({name: str(getattr(loaded.data.versions, name)) for name in TOOLS} if loaded
                else {name: default_version(name) for name in TOOLS})
    findings += _safely("tools", lambda: local.check_tools(versions, tool_pins.load(),
                                                           env.tools_dir))
    findings += inventory.findings
    if loaded is None:
        why = "the inventory is invalid"
        return [*findings, *(skipped(c, why) for c in ("hosts", "dns", "age key", "secrets",
                                                        "charts"))]
    for host in hosts:
        findings += _safely(host.name, functools.partial(
            _host_checks, loaded, host, inventory.connectable, env))
    findings += _safely("dns", lambda: [
        network.check_dns(name, network.host_addresses(loaded.data, env.resolve), env.resolve)
        for name in network.public_names(loaded.data)])
    findings += _safely("age key", lambda: _key_and_secrets(loaded, env.root))
    findings += _safely("charts", lambda: files.check_charts(loaded, env.charts_cache,
                                                             env.charts_lock))
    return findings
