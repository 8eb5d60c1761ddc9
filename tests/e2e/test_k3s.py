"""k3s.install's host side on the (hardened) lab VM, over real SSH.

There is no k3s binary here: the STAND-IN ``tests/standins/k3s`` goes through the
air-gap path (uploaded over SFTP, checked against the sha256 this test puts in the
inventory). Everything else is real: the files and their modes, our systemd unit, the
restart only on change, the readiness wait, the operator's kubeconfig, the SSH tunnel,
and the real kubectl 1.33.9 reaching the stand-in's HTTPS /version through it.
The cluster token comes from a test source here (the secrets store is tested with real
sops and age in the unit tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
import yaml

from tasks import k3s
from tasks.cli import session as make_session
from tasks.cluster.access import cluster
from tasks.engine.command import Command
from tasks.engine.report import Reporter, Status
from tests.e2e.conftest import LabVm

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standins" / "k3s"
TOKEN = "K10-e2e-canary-" + "9c1f3a7be2d4"  # a canary: must never show in ps or output


def standin(tmp_path: Path, version: str = "v1.33.3+k3s1") -> tuple[Path, str]:
    text = STANDIN.read_text().replace('VERSION = "v1.33.3+k3s1"', f'VERSION = "{version}"')
    path = tmp_path / f"k3s-{version}"
    path.write_text(text)
    return path, hashlib.sha256(text.encode()).hexdigest()


def inventory(vm: LabVm, tmp_path: Path, binary: Path, sha: str, version: str) -> Path:
    data = yaml.safe_load(vm.inventory.read_text())
    for host in data["hosts"]:
        host["key_file"] = str(vm.key)
    data["host"]["ssh"]["known_hosts"] = str(vm.known_hosts)
    data.setdefault("versions", {})["k3s"] = version
    data["k3s"] = {"airgap": {"binary": str(binary), "binary_sha256": sha},
                   "kubeconfig": str(tmp_path / "kube" / "lab.yaml"), "cluster_name": "lab",
                   "ready_seconds": 120}
    path = tmp_path / f"inventory-{version}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def install(path: Path) -> tuple[bool, str, list[tuple[str, Status]]]:
    s = make_session(str(path))
    out = io.StringIO()
    s.reporter = Reporter(out)
    ok = k3s.run(s, token=lambda _s: TOKEN)
    return ok, out.getvalue(), [(o.step_id, o.status) for o in s.summary.outcomes]


def sudo(vm: LabVm, command: str) -> str:
    import shlex

    return vm.run(f"sudo -n sh -c {shlex.quote(command)}").stdout


@pytest.fixture(scope="module")
def vm(lab_vm: LabVm) -> LabVm:
    """The lab VM, hardened (as after test_harden.py; hardened here when run alone)."""
    if lab_vm.run("command -v python3 fail2ban-client", check=False).rc != 0:
        import subprocess
        import sys

        r = subprocess.run([sys.executable, "-m", "invoke", "host.harden", "-i",
                            str(lab_vm.inventory)], cwd=REPO, text=True, capture_output=True,
                           timeout=1800, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    return lab_vm


def test_1_install_from_the_airgap_path(vm: LabVm, tmp_path: Path) -> None:
    binary, sha = standin(tmp_path)
    ok, text, outcomes = install(inventory(vm, tmp_path, binary, sha, "v1.33.3+k3s1"))
    assert ok, text
    assert dict(outcomes)["k3s-binary"] is Status.CHANGED
    assert dict(outcomes)["k3s-service"] is Status.CHANGED
    modes = sudo(vm, "stat -c '%a %U %n' /etc/rancher/k3s/config.yaml"
                     " /etc/rancher/k3s/cluster-token /etc/rancher/k3s/psa.yaml"
                     " /etc/rancher/k3s/audit-policy.yaml /etc/rancher/k3s/k3s.yaml"
                     " /var/lib/rancher/k3s/server/logs /usr/local/bin/k3s").splitlines()
    assert modes == ["600 root /etc/rancher/k3s/config.yaml",
                     "600 root /etc/rancher/k3s/cluster-token",
                     "600 root /etc/rancher/k3s/psa.yaml",
                     "600 root /etc/rancher/k3s/audit-policy.yaml",
                     "600 root /etc/rancher/k3s/k3s.yaml",
                     "700 root /var/lib/rancher/k3s/server/logs",
                     "755 root /usr/local/bin/k3s"]
    assert sudo(vm, "cat /etc/rancher/k3s/cluster-token") == TOKEN
    config_text = sudo(vm, "cat /etc/rancher/k3s/config.yaml")
    assert 'token-file: "/etc/rancher/k3s/cluster-token"' in config_text
    assert sudo(vm, "systemctl is-active k3s").strip() == "active"
    assert sudo(vm, "systemctl is-enabled k3s").strip() == "enabled"
    assert "ExecStart=/usr/local/bin/k3s server" in sudo(vm, "cat /etc/systemd/system/k3s.service")
    # nothing secret in any process's arguments, or in what the stand-in saw
    assert TOKEN not in sudo(vm, "ps -eo args") and TOKEN not in text
    assert TOKEN not in sudo(vm, "cat /var/log/k3s-standin.log")
    assert "/var/tmp/stack-upload" not in sudo(vm, "ls /var/tmp")  # uploads cleaned up
    kubeconfig = tmp_path / "kube" / "lab.yaml"
    assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
    config = yaml.safe_load(kubeconfig.read_text())
    assert config["current-context"] == "lab"
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"


def test_2_the_real_kubectl_reaches_the_api_through_the_tunnel(vm: LabVm,
                                                               tmp_path: Path) -> None:
    binary, sha = standin(tmp_path)
    s = make_session(str(inventory(vm, tmp_path, binary, sha, "v1.33.3+k3s1")))
    with cluster(s) as target:  # the pinned kubectl 1.33.9 (inv tools.install)
        r = target.exec(Command((target.tools.kubectl, "version", "-o", "json")))
    assert r.rc == 0, r.stderr
    assert json.loads(r.stdout)["serverVersion"]["gitVersion"] == "v1.33.3+k3s1"


def test_3_a_second_run_changes_nothing_and_does_not_restart(vm: LabVm, tmp_path: Path) -> None:
    """host.harden and k3s.install converged, in one run as deploy.all does them: one SSH
    connection, 3 round trips in all (connect, the host's facts, K3s's facts)."""
    from tasks import harden

    before = sudo(vm, "systemctl show -p ExecMainStartTimestampMonotonic k3s")
    binary, sha = standin(tmp_path)
    s = make_session(str(inventory(vm, tmp_path, binary, sha, "v1.33.3+k3s1")))
    out = io.StringIO()
    s.reporter = Reporter(out)
    assert harden.run(s) and k3s.run(s, token=lambda _s: TOKEN), out.getvalue()
    s.close()
    assert {o.status for o in s.summary.outcomes} == {Status.OK}, out.getvalue()
    assert s.summary.round_trips == {vm.name: 3}, s.summary.round_trips
    assert sudo(vm, "systemctl show -p ExecMainStartTimestampMonotonic k3s") == before


def test_4_a_config_edited_by_hand_is_restored_and_k3s_restarted(vm: LabVm,
                                                                 tmp_path: Path) -> None:
    binary, sha = standin(tmp_path)
    path = inventory(vm, tmp_path, binary, sha, "v1.33.3+k3s1")
    # Edited while K3s runs: the file is put back; K3s never read the edit, no restart.
    before = sudo(vm, "systemctl show -p ExecMainStartTimestampMonotonic k3s")
    sudo(vm, "echo 'disable: [traefik]' >>/etc/rancher/k3s/config.yaml")
    ok, text, outcomes = install(path)
    assert ok, text
    assert (dict(outcomes)["k3s-files"], dict(outcomes)["k3s-service"]) == (
        Status.CHANGED, Status.OK)
    assert "disable: [traefik]" not in sudo(vm, "cat /etc/rancher/k3s/config.yaml")
    assert sudo(vm, "systemctl show -p ExecMainStartTimestampMonotonic k3s") == before
    # Edited, and K3s restarted by hand on it: put back, and restarted on ours.
    sudo(vm, "echo 'disable: [traefik]' >>/etc/rancher/k3s/config.yaml"
             " && systemctl restart k3s")
    edited = sudo(vm, "systemctl show -p ExecMainStartTimestampMonotonic k3s")
    ok, text, outcomes = install(path)
    assert ok, text
    assert (dict(outcomes)["k3s-files"], dict(outcomes)["k3s-service"]) == (
        Status.CHANGED, Status.CHANGED)
    assert "disable: [traefik]" not in sudo(vm, "cat /etc/rancher/k3s/config.yaml")
    assert sudo(vm, "systemctl show -p ExecMainStartTimestampMonotonic k3s") != edited


def test_5_a_version_bump_upgrades_and_a_downgrade_is_refused(vm: LabVm,
                                                             tmp_path: Path) -> None:
    newer, sha = standin(tmp_path, "v1.33.4+k3s1")
    ok, text, _ = install(inventory(vm, tmp_path, newer, sha, "v1.33.4+k3s1"))
    assert ok, text
    assert re.search(r"install k3s v1\.33\.4\+k3s1 from k3s-v1\.33\.4\+k3s1 \(was"
                     r" v1\.33\.3\+k3s1\)", text), text
    assert "k3s version v1.33.4+k3s1" in sudo(vm, "/usr/local/bin/k3s --version")
    older, old_sha = standin(tmp_path)
    ok, text, _ = install(inventory(vm, tmp_path, older, old_sha, "v1.33.3+k3s1"))
    assert not ok
    assert "K3s v1.33.4+k3s1 is installed, newer than versions.k3s v1.33.3+k3s1: downgrades" \
           " are refused" in text
