"""inv status end to end: bad input exits 2 in one line; a host that cannot be reached
is one unhealthy line (and the cluster behind it is said unchecked), exit 1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.unit.inventory_text import OPENSSH_HEADER

REPO = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def inventory(tmp_path: Path, port: int) -> Path:
    (tmp_path / "id_test").write_text(OPENSSH_HEADER + "AAAA\n")
    path = tmp_path / "inventory.yaml"
    path.write_text(f"""\
domain: example.com
acme_email: ops@example.com
operators: [203.0.113.10/32]
host: {{ssh: {{port: {port}, connect_timeout: 3}}}}
hosts:
  - {{name: vps1, address: 127.0.0.1, user: admin, key_file: id_test}}
""")
    return path


def inv(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", "status", *args], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def test_a_bad_inventory_exits_2_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("domain: example.com\n")
    proc = inv(tmp_path, "-i", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_an_unknown_host_exits_2(tmp_path: Path) -> None:
    proc = inv(tmp_path, "-i", str(inventory(tmp_path, closed_port())), "--host", "nope")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


def test_an_unreachable_host_is_one_line_and_exit_1(tmp_path: Path) -> None:
    port = closed_port()
    proc = inv(tmp_path, "-i", str(inventory(tmp_path, port)))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == "host vps1"
    # (why exactly depends on this machine: nothing on the port, or an sshd on 22)
    assert lines[1].startswith(f"  FAIL  ssh vps1 (admin@127.0.0.1:{port}): ")
    assert "fix: is the host up, and SSH reachable from here?" in proc.stdout
    assert "  FAIL  API not checked: the first server vps1 cannot be reached" in lines
    assert lines[-1] == "unhealthy: 2 of 2 checks: ssh (host vps1), API (cluster)"
    assert all(len(line) <= 100 for line in lines)

    as_json = inv(tmp_path, "-i", str(inventory(tmp_path, port)), "--json")
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["healthy"] is False
    assert [(f["area"], f["name"], f["state"]) for f in data["findings"]] == [
        ("host vps1", "ssh", "unhealthy"), ("cluster", "API", "unhealthy")]
