"""A host's checks: one batch of read-only facts over SSH, findings out.

The batch holds the facts of every ``host.harden`` step (their plan in check mode is
the drift: "host files edited by hand") and, reusing those that exist, what status adds:
UFW active with our rules (the firewall step's ``ufw show added`` and its status read),
the fail2ban jail live (the fail2ban step's query, plus ``fail2ban-client status sshd``
for the banned count), sshd active on the inventory's port (the sshd step's ``sshd -T``),
the dead-man switch's state (tasks/harden/deadman.py), and the pending security updates
as apt's simulation sees them with the package lists of the last refresh (the apt timers'
``apt-get update``; status never runs one): ``apt-get -s dist-upgrade`` lists each upgrade
as ``Inst <pkg> [<old>] (<new> <origin>:<release> [<arch>])``, and those from a
``-security`` suite count (dist-upgrade, not upgrade: a kernel's security update comes as
a new package that ``upgrade`` holds back).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, FactError, Facts, Raw
from tasks.engine.step import Step
from tasks.harden import deadman, fail2ban, firewall, sshd
from tasks.harden.facts import unit_states
from tasks.status.findings import Finding, bad, ok, unknown, warn

SSH_UNITS = unit_states("ssh.service", "ssh.socket")
F2B_UNITS = unit_states(fail2ban.UNIT)
HARDEN = "inv host.harden"


def _banned(raw: Raw) -> int | None:
    """``Currently banned:`` of ``fail2ban-client status sshd``; None when the jail
    cannot be read (fail2ban down, no such jail)."""
    match = re.search(r"Currently banned:\s*(\d+)", raw.stdout)
    return int(match[1]) if raw.rc == 0 and match else None


BANNED = Fact("status:fail2ban-banned", "fail2ban-client status sshd", _banned)
DEADMAN = Fact("status:deadman", deadman.STATE_SCRIPT.rstrip(),
               lambda raw: deadman.parse_state(raw.stdout))


def _security(raw: Raw) -> list[str] | None:
    if raw.rc != 0:
        return None
    return [line.split()[1] for line in raw.stdout.splitlines()
            if line.startswith("Inst ") and len(line.split()) > 1
            and re.search(r"\([^)]*-security[ ,/)]", line + ")")]


SECURITY = Fact("status:apt-security",
                "LC_ALL=C apt-get -s -o Debug::NoLocking=1 dist-upgrade", _security)
STATUS_FACTS: tuple[Fact[Any], ...] = (firewall.UFW_INSTALLED, firewall.STATUS, firewall.ADDED,
                                       F2B_UNITS, fail2ban.LIVE, BANNED, SSH_UNITS,
                                       sshd.EFFECTIVE, sshd.SOCKET, DEADMAN, SECURITY)


def _clock(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


def ufw(area: str, facts: Facts, policy: firewall.FirewallPolicy) -> Finding:
    if not facts[firewall.UFW_INSTALLED]:
        return bad(area, "ufw", "not installed", HARDEN)
    status = facts[firewall.STATUS]
    wanted = policy.rules()
    missing = [r for r in wanted if r not in facts[firewall.ADDED]]
    if status.get("status") != "active":
        return bad(area, "ufw", "inactive: the host accepts every port", HARDEN)
    if status.get("DEFAULT_INPUT_POLICY") != "DROP":
        return bad(area, "ufw", f"active, incoming policy"
                   f" {status.get('DEFAULT_INPUT_POLICY') or 'unknown'}, want DROP", HARDEN)
    if missing:
        return bad(area, "ufw", f"active, {len(missing)} of our {len(wanted)} rules missing:"
                   f" {missing[0]}", HARDEN)
    return ok(area, "ufw", f"active, deny incoming, our {len(wanted)} rules")


def jail(area: str, facts: Facts, policy: fail2ban.JailPolicy) -> Finding:
    enabled, _, active = facts[F2B_UNITS].get(fail2ban.UNIT, ",").partition(",")
    banned = facts[BANNED]
    if active != "active":
        return bad(area, "fail2ban", f"fail2ban.service is {active or 'missing'}", HARDEN)
    if banned is None:
        return bad(area, "fail2ban", "jail sshd is not running", HARDEN)
    problems = policy.live_problems(facts[fail2ban.LIVE])
    if problems:
        return bad(area, "fail2ban", f"jail sshd running, {problems[0]}", HARDEN)
    boot = "" if enabled == "enabled" else f" (service {enabled or 'not enabled'} at boot)"
    detail = f"jail sshd running, {banned} banned{boot}"
    return ok(area, "fail2ban", detail) if not boot else bad(area, "fail2ban", detail, HARDEN)


def ssh_daemon(area: str, facts: Facts, port: int) -> Finding:
    units = facts[SSH_UNITS]
    service = units.get("ssh.service", ",").partition(",")[2]
    socket = units.get("ssh.socket", ",").partition(",")[2]
    if "active" not in (service, socket):
        return bad(area, "sshd", f"ssh.service is {service or 'missing'}", HARDEN)
    listening = facts[sshd.EFFECTIVE].get("port", "")
    via = facts[sshd.SOCKET]
    ports = [int(p) for p in listening.split()] if via is None else list(via)
    if ports != [port]:
        shown = ", ".join(map(str, ports)) or "nothing"
        return bad(area, "sshd", f"listens on {shown}, want {port} (host.ssh.port)", HARDEN)
    how = "ssh.socket" if via is not None else "ssh.service"
    return ok(area, "sshd", f"active ({how}), port {port}")


def dead_man(area: str, facts: Facts) -> Finding:
    state, when = facts[DEADMAN]
    if state == "disarmed":
        return ok(area, "dead-man switch", "disarmed")
    if state == "fired":
        at = _clock(when) if when else "an unknown time"
        return bad(area, "dead-man switch", f"fired at {at}: SSH/firewall settings rolled"
                   " back", f"{HARDEN} applies them again")
    if state == "armed":
        at = _clock(when) if when else "an unknown time"
        return warn(area, "dead-man switch", f"armed: rolls back at {at} unless a run"
                    " confirms", f"let the running {HARDEN} finish, or re-run it")
    return unknown(area, "dead-man switch", "state unreadable", HARDEN)


def updates(area: str, facts: Facts) -> Finding:
    pending = facts[SECURITY]
    if pending is None:
        raw = facts[SECURITY.key]
        return unknown(area, "security updates", f"apt-get -s failed (exit {raw.rc})")
    if pending:
        return bad(area, "security updates", f"{len(pending)} pending:"
                   f" {', '.join(pending[:5])}{' ...' if len(pending) > 5 else ''}",
                   "unattended-upgrades installs them daily; now: sudo unattended-upgrade")
    return ok(area, "security updates", "none pending")


def checks(area: str, facts: Facts, firewall_policy: firewall.FirewallPolicy,
           jail_policy: fail2ban.JailPolicy, port: int) -> list[Finding]:
    """Every host check; a fact that cannot be read is that check's ``unknown``."""
    out = []
    each: tuple[tuple[str, Callable[[], Finding]], ...] = (
        ("ufw", lambda: ufw(area, facts, firewall_policy)),
        ("fail2ban", lambda: jail(area, facts, jail_policy)),
        ("sshd", lambda: ssh_daemon(area, facts, port)),
        ("dead-man switch", lambda: dead_man(area, facts)),
        ("security updates", lambda: updates(area, facts)))
    for name, check in each:
        try:
            out.append(check())
        except FactError as exc:
            out.append(unknown(area, name, str(exc)))
    return out


def drift(host: str, facts: Facts, steps: Sequence[Step]) -> list[Finding]:
    """The host.harden steps that would change something, each with what first."""
    out = []
    for step in steps:
        try:
            changes = step.plan(facts)
        except UserError as exc:
            out.append(bad("drift", f"{host}: {step.id}", exc.lines[0], HARDEN))
            continue
        except FactError as exc:
            out.append(unknown("drift", f"{host}: {step.id}", str(exc)))
            continue
        if changes:  # the first change that says what differs (sshd's starts a snapshot)
            first = next((c.summary for c in changes if not c.summary.startswith("snapshot")),
                         changes[0].summary)
            out.append(bad("drift", f"{host}: {step.id}", f"differs: {first}",
                           f"{HARDEN} (--check lists every change)"))
    if not out:
        out.append(ok("drift", f"{host}: host", f"as host.harden leaves it ({len(steps)}"
                      " steps)"))
    return out
