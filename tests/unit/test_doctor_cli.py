"""``inv doctor`` end to end: an unhealthy setup, the JSON, an invalid inventory, exit codes.

Runs through invoke's Program in this process (so the resolver and the folders can be
pointed at the test's), and once as a real ``python -m invoke`` for the usage error. The
tools in ``.cache/tools`` are test stand-ins (scripts printing a version, installed with a
record of their sha256, as tools.install leaves them); sops and age-keygen for the
secrets are the real ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from doctor_case import CANARY, Case, make_case
from invoke import Program

from tasks.collection import ns
from tasks.doctor import files
from tasks.doctor import task as doctor_task
from tasks.doctor.findings import Finding, Status, screen
from tasks.doctor.run import Env, run
from tasks.engine import target as target_module
from tasks.tooling.catalog import TOOLS

REPO = Path(__file__).resolve().parents[2]
SUDO_CANARY = "CANARY-sudo-8c41"
PRINTS = {"helm": "v3.17.2+g0000000", "kubectl": '{"clientVersion": {"gitVersion": "v1.33.9"}}',
          "sops": "sops 3.11.0 (latest)", "age": "v1.1.1"}


def installed_standin(tools: Path, tool: str, version: str) -> Path:
    """A stand-in ``tool`` in ``.cache/tools/<tool>-<version>/`` with its install record."""
    folder = tools / f"{tool}-{version}"
    folder.mkdir(parents=True)
    digests = {}
    for binary in TOOLS[tool].binaries:
        path = folder / binary
        path.write_text(f"#!/bin/sh\necho '{PRINTS[tool]}'\n")
        path.chmod(0o755)
        digests[binary] = hashlib.sha256(path.read_bytes()).hexdigest()
    record = {"source": "test", "origin": "a test stand-in", "binaries": digests}
    (folder / ".installed.json").write_text(json.dumps(record))
    return folder / TOOLS[tool].binaries[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def inv(*argv: str) -> int:
    try:
        Program(namespace=ns, version="test").run(["inv", *argv], exit=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    return make_case(tmp_path, monkeypatch)


def unhealthy(case: Case, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Finding], Env]:
    """SSH closed, DNS elsewhere, 80/443 closed, helm at another version, a chart missing.
    Returns the findings expected, literally, and the Env to run with."""
    tools = case.dir / "tools"
    helm = installed_standin(tools, "helm", "4.1.4")
    for tool, version in (("kubectl", "1.33.9"), ("sops", "3.11.0"), ("age", "1.1.1")):
        installed_standin(tools, tool, version)
    ssh_port, web = closed_port(), closed_port()
    # sshd "on 22" is reached on ssh_port: nothing else is tried (whatever listens on 22 here)
    case.write_inventory(port=ssh_port,
                         host_extra=f", ssh_forwards: [{{host_port: 22, local_port: {ssh_port}}}]")
    (case.cache / "loki-18.11.0.tgz").unlink()
    monkeypatch.setenv("STACK_SUDO_PASSWORD", SUDO_CANARY)
    monkeypatch.setattr(target_module, "_env_sudo_password", None)
    env = case.env(tools_dir=tools, web_ports=(web,), python_requirement=lambda: ">=3.0",
                   resolve=lambda name: {"api.example.test": ["198.51.100.7"]}[name])
    python = ".".join(map(str, sys.version_info[:3]))
    expected = [
        Finding("python", Status.OK, f"Python {python} (pyproject: requires-python >=3.0)"),
        Finding("tool helm", Status.FAIL, f"{helm} reports 3.17.2, not helm 4.1.4"
                " (versions.helm)", "run inv tools.install"),
        Finding("tool kubectl", Status.OK, f"kubectl 1.33.9: {tools}/kubectl-1.33.9/kubectl,"
                " sha256 as installed (from test)"),
        Finding("tool sops", Status.OK, f"sops 3.11.0: {tools}/sops-3.11.0/sops, sha256 as"
                " installed (from test)"),
        Finding("tool age", Status.OK, f"age 1.1.1: {tools}/age-1.1.1/age, sha256 as installed"
                " (from test)"),
        Finding("inventory", Status.OK, "inventory.yaml: valid: 1 host(s), domain example.test"),
        Finding("vps1 ssh port", Status.FAIL, f"127.0.0.1: no SSH port answers ({ssh_port}:"
                " connection refused)", "check hosts[].address and"
                " hosts[].port, that the host is up, and the provider's firewall"),
        Finding("vps1 host key", Status.SKIPPED, "no SSH port answers"),
        Finding("vps1 login", Status.SKIPPED, "no SSH port answers"),
        Finding("vps1 sudo", Status.SKIPPED, "no SSH port answers"),
        Finding("vps1 ports 80/443", Status.WARN, f"127.0.0.1 {web}: connection refused (from"
                " here); whether K3s runs there is not known, so this cannot tell yet",
                "run inv doctor again after inv k3s.install; if still closed, open 80/443 in"
                " the provider's firewall"),
        Finding("dns api.example.test", Status.WARN, "api.example.test resolves to"
                " 198.51.100.7; the hosts' addresses (127.0.0.1) are not public, so which one"
                " it must be cannot be told", "make sure api.example.test reaches this"
                " platform's port 80 from the Internet"),
        Finding("age key", Status.OK, f"{case.age_key} (secrets.age_key_file), mode 0600,"
                f" public key {case.public_key} (a recipient)"),
        Finding("secrets", Status.OK, "1 file(s) in secrets/ decrypt with the age key (in"
                " memory)"),
        Finding("chart loki", Status.FAIL, f"{case.cache}/loki-18.11.0.tgz absent",
                "run inv charts.pull"),
    ]
    return expected, env


def test_doctor_prints_every_finding_and_fails(case: Case, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    expected, env = unhealthy(case, monkeypatch)
    monkeypatch.setattr(doctor_task, "run", functools.partial(run, env=env))
    assert inv("doctor", "-i", str(case.inventory)) == 1
    out = capsys.readouterr()
    lines = [f"doctor: {case.inventory}", *screen(expected)]
    assert out.out == "\n".join(lines) + "\n"
    assert lines[-1] == "7 ok, 2 warn, 3 fail, 3 skipped: not ready"
    assert all(f"{f.status.value:<8}{f.check}" in out.out for f in expected)
    assert max(len(line) for line in lines[1:]) <= 100
    assert out.err == ""
    assert CANARY not in out.out and SUDO_CANARY not in out.out


def test_doctor_json(case: Case, monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> None:
    expected, env = unhealthy(case, monkeypatch)
    monkeypatch.setattr(doctor_task, "run", functools.partial(run, env=env))
    assert inv("doctor", "-i", str(case.inventory), "--json") == 1
    got = json.loads(capsys.readouterr().out)
    assert got == [{"check": f.check, "status": f.status.value, "detail": f.detail,
                    "fix": f.fix} for f in expected]


def test_an_invalid_inventory_skips_what_needs_it(case: Case,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    case.inventory.write_text(case.inventory.read_text().replace(
        "domain: example.test", "domain: 'not a domain!'"))
    found = run(case.inventory, env=case.env())
    assert found[5:] == [
        Finding("inventory", Status.FAIL, "inventory.yaml: domain: expected a domain name such"
                " as example.com (at most 253 characters), got \"not a domain!\"",
                "edit inventory.yaml (inventory.schema.json documents every key), then inv"
                " inventory.check"),
        *(Finding(check, Status.SKIPPED, "the inventory is invalid")
          for check in ("hosts", "dns", "age key", "secrets", "charts")),
    ]
    assert [f.check for f in found[:5]] == ["python", "tool helm", "tool kubectl",
                                            "tool sops", "tool age"]


def test_an_unknown_host_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("domain: example.com\nacme_email: ops@example.com\n"
                    "operators: [203.0.113.10/32]\n"
                    "hosts:\n  - {name: vps1, address: 203.0.113.20, user: admin,"
                    " key_file: missing}\n")
    proc = subprocess.run([sys.executable, "-m", "invoke", "doctor", "-i", str(path),
                           "--host", "vps9"], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2, "", 'error: inventory.yaml: no host named "vps9" (hosts: vps1)\n')


def test_a_check_that_crashes_does_not_hide_the_others(case: Case,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> list[Finding]:
        raise RuntimeError("boom")

    monkeypatch.setattr(files, "check_age_key", broken)
    port = closed_port()
    case.write_inventory(port=port,
                         host_extra=f", ssh_forwards: [{{host_port: 22, local_port: {port}}}]")
    found = run(case.inventory, env=case.env(resolve=lambda name: ["203.0.113.20"],
                                             web_ports=(port,)))
    assert [f for f in found if f.check in ("age key", "secrets", "charts")] == [
        Finding("age key", Status.FAIL, "the check itself failed: RuntimeError: boom",
                "report it: a bug in inv doctor"),
        Finding("charts", Status.OK, f"6 charts in {case.cache} with the sha256 of"
                f" {case.lock}"),
    ]


def test_a_missing_inventory_file(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    found = run(path, env=Env(python_requirement=lambda: ">=3.0"))
    assert found[5] == Finding("inventory", Status.FAIL, f"{path}: cannot read inventory: No"
                               " such file or directory (pass -i PATH or set STACK_INVENTORY)",
                               "pass -i PATH, or set $STACK_INVENTORY")
    assert found[6] == Finding("hosts", Status.SKIPPED, "the inventory is invalid")


def test_host_limits_the_host_checks_to_that_host(case: Case) -> None:
    port = closed_port()
    forward = f"ssh_forwards: [{{host_port: 22, local_port: {port}}}]"
    case.write_inventory(port=port, host_extra=f", {forward}")
    text = case.inventory.read_text().replace("versions:", f"  - {{name: vps2, address:"
                                              f" 127.0.0.1, port: {port}, user: admin,"
                                              f" key_file: id_test, role: agent, {forward}}}\n"
                                              "versions:")
    case.inventory.write_text(text)
    env = case.env(resolve=lambda name: ["203.0.113.20"], web_ports=(port,))
    everyone = [f.check for f in run(case.inventory, env=env)]
    assert [c for c in everyone if c.startswith("vps")] == [
        f"{h} {c}" for h in ("vps1", "vps2")
        for c in ("ssh port", "host key", "login", "sudo", "ports 80/443")]
    only = [f.check for f in run(case.inventory, "vps2", env=env)]
    assert [c for c in only if c.startswith("vps")] == [
        f"vps2 {c}" for c in ("ssh port", "host key", "login", "sudo", "ports 80/443")]
