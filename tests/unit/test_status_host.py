"""inv status on a host: recorded outputs in, the host's lines out.

The healthy host is ../fixtures/host/all/converged-custom-inventory.yaml (every
host.harden fact of a converged Debian 12 host, sshd on 2222) plus what status reads on
top (fixtures/status/host.yaml); each unhealthy case changes the outputs a real host
would print in that state, and pins the lines the operator reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.cli import Session
from tasks.cluster.kube import Tools
from tasks.engine.facts import Facts, Raw
from tasks.harden import steps as host_steps
from tasks.model.load import load
from tasks.status import findings, host
from tasks.status.run import host_findings, host_report
from tests.unit.status_replay import Replay

HOST_DATA = Path(__file__).parent / "fixtures" / "host"
STATUS_DATA = Path(__file__).parent / "fixtures" / "status"
CONVERGED = yaml.safe_load((HOST_DATA / "all" / "converged-custom-inventory.yaml").read_text())
EXTRA = yaml.safe_load((STATUS_DATA / "host.yaml").read_text())
FIX = "                                 fix: "

HEALTHY = [
    "host vps1",
    "  ok    ufw              active, deny incoming, our 10 rules",
    "  ok    fail2ban         jail sshd running, 1 banned",
    "  ok    sshd             active (ssh.service), port 2222",
    "  ok    dead-man switch  disarmed",
    "  ok    security updates none pending",
    "drift",
    "  ok    vps1: host       as host.harden leaves it (15 steps)",
    "healthy: 6 checks",
]
FIX = " " * 8 + "fix: "
HARDEN = FIX + "inv host.harden"
PLAN = FIX + "inv host.harden (--check lists every change)"


def report(tmp_path: Path, changed: dict[str, tuple[str, int]] | None = None) -> list[str]:
    data = {**yaml.safe_load((HOST_DATA / "inventory.yaml").read_text()),
            **CONVERGED["inventory"]}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    inv = load(path, require_key_files=False).data
    raw: dict[str, Any] = {**CONVERGED["facts"], **EXTRA}
    facts = {k: Raw(v["stdout"], v["rc"], v.get("stderr", "")) for k, v in raw.items()}
    facts.update({k: Raw(out, rc) for k, (out, rc) in (changed or {}).items()})
    h = inv.hosts[0]
    steps = host_steps(inv, h, CONVERGED["client_address"], CONVERGED["live_ssh_port"])
    found = host_report(inv, h, Facts(facts), steps)
    return [*findings.lines(found), f"exit {findings.exit_code(found)}"]


def test_a_converged_host_is_healthy(tmp_path: Path) -> None:
    assert report(tmp_path) == [*HEALTHY, "exit 0"]


def test_status_reads_only_facts_the_batch_has(tmp_path: Path) -> None:
    """Every fact status reads is either a host.harden fact or one of its own, and its
    own are read-only commands."""
    keys = {f.key for f in host.STATUS_FACTS}
    assert keys - set(CONVERGED["facts"]) == set(EXTRA)
    assert host.SECURITY.command == "LC_ALL=C apt-get -s -o Debug::NoLocking=1 dist-upgrade"
    assert host.BANNED.command == "fail2ban-client status sshd"


UFW_OFF = ("status=inactive\nIPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\n"
           "DEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n", 0)
F2B_DOWN = {"units:fail2ban.service": ("enabled\n--\nfailed\n", 3),
            "fail2ban:live": ("\n", 0),
            "status:fail2ban-banned": ("", 255)}
SSHD_ON_22 = CONVERGED["facts"]["sshd:effective"]["stdout"].replace(
    "port 2222\n", "port 22\n").replace(":2222\n", ":22\n")
PENDING = (STATUS_DATA / "security-pending.txt").read_text()


@pytest.mark.parametrize(("changed", "lines"), [
    pytest.param({"ufw:status": UFW_OFF}, [
        "  FAIL  ufw              inactive: the host accepts every port", HARDEN,
        "  FAIL  vps1: firewall   differs: enable ufw", PLAN], id="ufw-inactive"),
    pytest.param(F2B_DOWN, [
        "  FAIL  fail2ban         fail2ban.service is failed", HARDEN,
        "  FAIL  vps1: fail2ban   differs: enable and restart fail2ban (service is"
        " enabled/failed)", PLAN], id="fail2ban-down"),
    pytest.param({"status:fail2ban-banned": ("", 255)}, [
        "  FAIL  fail2ban         jail sshd is not running", HARDEN], id="jail-down"),
    pytest.param({"sshd:effective": (SSHD_ON_22, 0)}, [
        "  FAIL  sshd             listens on 22, want 2222 (host.ssh.port)", HARDEN,
        "  FAIL  vps1: sshd       differs: sshd differs (sshd -T: port is '22', want '2222'):"
        " reload", PLAN], id="wrong-sshd-port"),
    pytest.param({"status:deadman": ("fired 1767603600\n", 0)}, [
        "  FAIL  dead-man switch  fired at 2026-01-05 09:00:00 UTC: SSH/firewall settings"
        " rolled back", FIX + "inv host.harden applies them again"], id="dead-man-fired"),
    pytest.param({"status:apt-security": (PENDING, 0)}, [
        "  FAIL  security updates 4 pending: linux-image-6.1.0-37-amd64, linux-image-amd64,"
        " libssl3, openssl",
        FIX + "unattended-upgrades installs them daily; now: sudo unattended-upgrade"],
        id="security-updates-pending"),
    pytest.param({"status:apt-security": ("", 100)}, [
        "  ??    security updates apt-get -s failed (exit 100)"], id="apt-unreadable"),
])
def test_unhealthy_host(tmp_path: Path, changed: dict[str, tuple[str, int]],
                        lines: list[str]) -> None:
    out = report(tmp_path, changed)
    assert out[-1] == "exit 1"
    assert [line for line in out if line.startswith(("  FAIL", "  WARN", "  ??"))
            or "fix:" in line] == lines


def test_an_armed_dead_man_switch_is_a_warning(tmp_path: Path) -> None:
    out = report(tmp_path, {"status:deadman": ("armed 1767603600\n", 0)})
    assert out[4:6] == [
        "  WARN  dead-man switch  armed: rolls back at 2026-01-05 09:00:00 UTC unless a run"
        " confirms", FIX + "let the running inv host.harden finish, or re-run it"]
    assert out[-2:] == ["healthy: 6 checks, 1 warning", "exit 0"]


def test_security_updates_count_only_security_suites() -> None:
    assert host.SECURITY.parse(Raw(PENDING, 0)) == [
        "linux-image-6.1.0-37-amd64", "linux-image-amd64", "libssl3", "openssl"]
    ubuntu = "Inst libc6 [2.39-0ubuntu8.3] (2.39-0ubuntu8.4 Ubuntu:24.04/noble-security [amd64])\n"
    assert host.SECURITY.parse(Raw(ubuntu, 0)) == ["libc6"]
    assert host.SECURITY.parse(Raw(EXTRA["status:apt-security"]["stdout"], 0)) == []


class HostReplay(Replay):
    """The run's open connection to the host, answering from the recordings."""

    client_address = CONVERGED["client_address"]
    server_port = CONVERGED["live_ssh_port"]

    def open(self) -> None:
        pass


def test_one_batch_reads_the_host_and_the_kubeconfig(tmp_path: Path) -> None:
    data = {**yaml.safe_load((HOST_DATA / "inventory.yaml").read_text()),
            **CONVERGED["inventory"]}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    s = Session(load(path, require_key_files=False))
    raw: dict[str, Any] = {**CONVERGED["facts"], **EXTRA}
    recorded = {k: Raw(v["stdout"], v["rc"]) for k, v in raw.items()}
    recorded["k3s:kubeconfig"] = Raw("apiVersion: v1\nkind: Config\n", 0)
    target = HostReplay(Tools("/k", "/h"), recorded, name="vps1")
    s.connections["vps1"] = target  # type: ignore[assignment]
    found = host_findings(s, s.inventory.data.hosts[0])
    assert [f.state.value for f in found] == ["ok"] * 6
    assert target.round_trips == 1  # every fact of status and of host.harden, at once
    assert sorted(target.asked) == sorted(recorded)
    assert s.node_kubeconfig == {"vps1": "apiVersion: v1\nkind: Config\n"}
