"""k3s.install's host steps: facts in (as uname, k3s, sha256sum, systemctl print them),
changes out, with literal expected values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.engine.errors import UserError
from tasks.engine.facts import Facts, Raw
from tasks.k3s import binary, files, node, service
from tasks.k3s.binary import Airgap, K3sBinary
from tasks.model.fields import build
from tasks.model.model import Inventory
from tests.unit.inventory_text import OPENSSH_HEADER
from tests.unit.platform_ctx import DEFAULT, _merge

SHA = "a" * 64
K3S_SHA = "b" * 64


def installed(stdout: str) -> Facts:
    return Facts({binary.INSTALLED.key: Raw(stdout, 0)})


def summaries(step: object, facts: Facts) -> list[str]:
    return [c.summary for c in step.plan(facts)]  # type: ignore[attr-defined]


def test_binary_fresh_host_downloads_the_release_and_checks_its_sums() -> None:
    step = K3sBinary("v1.33.3+k3s1")
    (change,) = step.plan(installed("x86_64\n"))
    assert change.summary == "install k3s v1.33.3+k3s1 (was none)"
    assert ("curl -fsSL --retry 3 -o \"$d/sums\" https://github.com/k3s-io/k3s/releases/"
            "download/v1.33.3%2Bk3s1/sha256sum-amd64.txt") in change.script
    assert ("curl -fsSL --retry 3 -o \"$d/k3s\" https://github.com/k3s-io/k3s/releases/"
            "download/v1.33.3%2Bk3s1/k3s") in change.script
    assert "awk '$2 == \"k3s\" {print $1}'" in change.script
    assert change.script.index("sha256sum -c") < change.script.index("install -m 0755")


def test_binary_arm64_asset_names() -> None:
    (change,) = K3sBinary("v1.33.3+k3s1").plan(installed("aarch64\n"))
    assert "/download/v1.33.3%2Bk3s1/k3s-arm64" in change.script
    assert "sha256sum-arm64.txt" in change.script and '$2 == "k3s-arm64"' in change.script


def test_binary_at_the_pinned_version_needs_nothing() -> None:
    facts = installed("x86_64\nk3s version v1.33.3+k3s1 (abcdef01)\n"
                      f"{K3S_SHA}  /usr/local/bin/k3s\n")
    assert K3sBinary("v1.33.3+k3s1").plan(facts) == []


def test_binary_upgrade_and_refused_downgrade() -> None:
    old = installed(f"x86_64\nk3s version v1.33.3+k3s1 (abcdef01)\n{K3S_SHA}  /usr/local/bin/k3s\n")
    assert summaries(K3sBinary("v1.33.4+k3s1"), old) == [
        "install k3s v1.33.4+k3s1 (was v1.33.3+k3s1)"]
    with pytest.raises(UserError, match=r"K3s v1\.33\.3\+k3s1 is installed, newer than"
                                        r" versions\.k3s v1\.33\.2\+k3s1: downgrades are"
                                        r" refused"):
        K3sBinary("v1.33.2+k3s1").plan(old)
    assert binary.parse_version("v1.33.10+k3s1") > binary.parse_version("v1.33.9+k3s2")  # type: ignore[operator]


def test_binary_unsupported_machine_is_refused() -> None:
    with pytest.raises(UserError, match=r"K3s has no build for this machine \(riscv64\)"):
        K3sBinary("v1.33.3+k3s1").plan(installed("riscv64\n"))


def test_binary_from_the_airgap_bundle_is_uploaded_then_checked() -> None:
    step = K3sBinary("v1.33.3+k3s1", Airgap(Path("/bundle/k3s"), SHA, "amd64"))
    (change,) = step.plan(installed("x86_64\n"))
    (upload,) = change.uploads
    assert (upload.local, upload.remote, upload.sha256) == (
        Path("/bundle/k3s"), f"/var/tmp/stack-upload-{SHA[:16]}-k3s", SHA)
    assert f'echo "{SHA}  /var/tmp/stack-upload-{SHA[:16]}-k3s" | sha256sum -c' in change.script
    same = installed(f"x86_64\nk3s version v1.33.3+k3s1 (x)\n{SHA}  /usr/local/bin/k3s\n")
    assert step.plan(same) == []
    other = installed(f"x86_64\nk3s version v1.33.1+k3s1 (x)\n{SHA}  /usr/local/bin/k3s\n")
    with pytest.raises(UserError, match=r"k3s\.airgap\.binary is K3s v1\.33\.1\+k3s1, but"
                                        r" versions\.k3s is v1\.33\.3\+k3s1"):
        step.plan(other)
    with pytest.raises(UserError, match=r"k3s\.airgap is for amd64, the host is arm64"):
        step.plan(installed("aarch64\n"))


def inventory(**changes: object) -> Inventory:
    inv, errors = build(Inventory, _merge(DEFAULT, dict(changes)))
    assert errors == [], errors
    return inv


def test_node_roles_one_server_several_servers_and_agents() -> None:
    one = node.nodes(inventory())
    assert (one["vps1"].role, one["vps1"].cluster_init, one["vps1"].join) == ("server", False,
                                                                            None)
    host = {"user": "admin", "key_file": "k"}
    many = node.nodes(inventory(hosts=[
        {**host, "name": "s1", "address": "203.0.113.1", "internal_address": "10.0.0.1"},
        {**host, "name": "s2", "address": "203.0.113.2"},
        {**host, "name": "w1", "address": "203.0.113.3", "role": "agent"}]))
    assert [(n.role, n.first, n.cluster_init, n.join, n.service) for n in many.values()] == [
        ("server", True, True, None, "k3s"),
        ("server", False, False, "https://10.0.0.1:6443", "k3s"),
        ("agent", False, False, "https://10.0.0.1:6443", "k3s-agent")]


def test_server_and_agent_configs() -> None:
    from tasks.stack.context import context

    host = {"user": "admin", "key_file": "k"}
    inv = inventory(hosts=[{**host, "name": "s1", "address": "203.0.113.1"},
                           {**host, "name": "s2", "address": "203.0.113.2"},
                           {**host, "name": "w1", "address": "203.0.113.3", "role": "agent"}])
    nodes = node.nodes(inv)
    ctx = context(inv)
    first = node.host_files(ctx, nodes["s1"])[0].content
    assert 'token-file: "/etc/rancher/k3s/cluster-token"' in first
    assert first.endswith("cluster-init: true\n")
    joined = node.host_files(ctx, nodes["s2"])[0].content
    assert joined.endswith("server: https://203.0.113.1:6443\n")
    (agent,) = node.host_files(ctx, nodes["w1"])
    assert agent.content.splitlines()[2:7] == [
        'node-name: "w1"', 'data-dir: "/var/lib/rancher/k3s"',
        'server: "https://203.0.113.1:6443"  # the first server\'s API, reached on the nodes\''
        " network", 'token-file: "/etc/rancher/k3s/cluster-token"',
        "# As on the servers: host.harden sets the kernel tunables the kubelet checks."]
    assert "ExecStart=/usr/local/bin/k3s agent" in node.unit(nodes["w1"])


def files_step() -> tuple[files.K3sFiles, list[str]]:
    from tasks.stack.context import context

    inv = inventory()
    n = node.nodes(inv)["vps1"]
    host_files = node.host_files(context(inv), n)
    return files.K3sFiles(n, host_files, "/var/lib/rancher/k3s", lambda: "T0KEN"), \
        [f.path for f in host_files]


def test_files_fresh_node() -> None:
    step, _ = files_step()
    raw = {f.key: Raw("", 1) for f in step.facts()}
    assert summaries(step, Facts(raw)) == [
        "write /etc/rancher/k3s/config.yaml (from manifests/k3s/host/config.yaml)",
        "write /etc/rancher/k3s/psa.yaml (from manifests/k3s/host/psa.yaml)",
        "write /etc/rancher/k3s/audit-policy.yaml (from manifests/k3s/host/audit-policy.yaml)",
        "write the cluster token to /etc/rancher/k3s/cluster-token (0600)",
        "write /etc/systemd/system/k3s.service",
        "create /var/lib/rancher/k3s/server/logs (0700) before K3s starts"]
    token_change = step.plan(Facts(raw))[3]
    assert "T0KEN" not in token_change.summary and "chmod 0600" in token_change.script
    assert "T0KEN" not in token_change.script  # base64 inside the script, sent on stdin


def test_files_converged_node_and_the_token_compared_by_checksum() -> None:
    import hashlib

    step, _ = files_step()
    raw: dict[str, Raw] = {}
    for f in step.files:
        raw[step.contents[f.path].key] = Raw(f.content, 0)
        raw[files.mode_fact(f.path).key] = Raw("600\n", 0)
    raw[step.unit_fact.key] = Raw(step.unit, 0)
    raw[files.TOKEN_SUM.key] = Raw(hashlib.sha256(b"T0KEN").hexdigest()
                                   + "  /etc/rancher/k3s/cluster-token\n", 0)
    raw[step.logs_mode.key] = Raw("700\n", 0)
    assert step.plan(Facts(raw)) == []
    raw[files.mode_fact("/etc/rancher/k3s/psa.yaml").key] = Raw("644\n", 0)
    assert summaries(step, Facts(raw)) == [
        "write /etc/rancher/k3s/psa.yaml (from manifests/k3s/host/psa.yaml)"]


def running(active: str = "active", enabled: str = "enabled", stamp: str = "S",
            now: str = "S", ready: str = "True") -> Facts:
    step = service_step()
    return Facts({step.fact.key: Raw(f"{active}\n@@\n{enabled}\n@@\n{stamp}\n@@\n{now}\n@@\n"
                                     f"{ready}", 0)})


def service_step() -> service.K3sService:
    n = node.nodes(inventory())["vps1"]
    return service.K3sService(n, ["/etc/rancher/k3s/config.yaml"], 300)


@pytest.mark.parametrize(("facts", "expected"), [
    (running(), []),
    (running(active="inactive", ready=""), ["restart k3s: k3s is inactive"]),
    (running(now="T"), ["restart k3s: binary, config, token or unit changed since K3s"
                        " started (or it was restarted by something else)"]),
    (running(ready="False"), ["check k3s: node vps1 is not Ready (False)"]),
    (running(enabled="disabled"), ["check k3s: k3s is not enabled at boot"]),
])
def test_service_restarts_only_on_change(facts: Facts, expected: list[str]) -> None:
    assert summaries(service_step(), facts) == expected


def test_service_restart_waits_for_ready_with_a_deadline_then_records_what_it_started() -> None:
    (change,) = service_step().plan(running(now="T"))
    script = change.script
    assert "deadline=$(( $(date +%s) + 300 ))" in script
    assert script.index("systemctl restart k3s") < script.index("until [") < script.index(
        "{ sha256sum /usr/local/bin/k3s /etc/rancher/k3s/config.yaml"
        " /etc/rancher/k3s/cluster-token /etc/systemd/system/k3s.service; echo pid"
        " $(systemctl show -p MainPID --value k3s); } >/var/lib/stack/k3s.started-with.tmp")
    assert "kubectl get serviceaccount default -n default" in script
    (check,) = service_step().plan(running(ready="False"))
    assert "systemctl restart" not in check.script  # no restart when nothing changed


def test_uninstall_removes_what_is_there_and_nothing_when_gone() -> None:
    from tasks.k3s.uninstall import K3sRemoved

    step = K3sRemoved("/var/lib/rancher/k3s")
    there = Facts({step.fact.key: Raw("/usr/local/bin/k3s\n/var/lib/rancher/k3s\n", 0)})
    (change,) = step.plan(there)
    assert change.summary == "stop K3s and remove /usr/local/bin/k3s, /var/lib/rancher/k3s"
    assert "rm -rf /usr/local/bin/k3s /etc/systemd/system/k3s.service" in change.script
    assert step.plan(Facts({step.fact.key: Raw("", 0)})) == []


def test_uninstall_needs_the_cluster_name_typed(tmp_path: Path) -> None:
    import subprocess
    import sys

    key = tmp_path / "id"
    key.write_text(OPENSSH_HEADER + "x\n")
    inv = tmp_path / "inventory.yaml"
    inv.write_text(f"""domain: example.com
acme_email: ops@example.com
operators: [203.0.113.10/32]
hosts: [{{name: vps1, address: 203.0.113.20, user: admin, key_file: {key}}}]
""")
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "invoke", "k3s.uninstall", "-i", str(inv),
                        "--confirm", "prod"], cwd=repo, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == ("error: not confirmed (typed 'prod', the cluster is 'vps'):"
                                " nothing was changed")
    r = subprocess.run([sys.executable, "-m", "invoke", "k3s.uninstall", "-i", str(inv)],
                       cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=60, check=False)
    assert r.returncode == 1
    assert "pass --confirm vps to run it without a terminal" in r.stderr
