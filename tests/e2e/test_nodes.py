"""Two lab VMs as a two-node cluster: a server and an agent on the lab's nodes' network
(10.99.0.0/24), hardened together, then K3s through the STAND-IN tests/standins/k3s.

Real: both hosts hardened over SSH, UFW's inter-node rules, packets between the nodes
(flannel's VXLAN port and the kubelet's, sent from the other node: delivered; the same
from an address that is not a node: dropped), and the agent reaching the server's API
across that network with the cluster token (the stand-in agent's join).

Not in the CI run (``nox -s e2e_nodes``): two emulated VMs take longer than its budget.
"""

from __future__ import annotations

import hashlib
import io
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tasks import k3s
from tasks.cli import session as make_session
from tasks.engine.report import Reporter
from tasks.labvm import lab, paths

pytestmark = [pytest.mark.e2e, pytest.mark.nodes]
REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standins" / "k3s"
TOKEN = "K10-nodes-canary-" + "3b8e0c6a"


@dataclass(frozen=True)
class Node:
    name: str
    port: int
    key: Path
    address: str

    def run(self, command: str, *, check: bool = True, timeout: float = 300) -> str:
        import paramiko

        client = paramiko.SSHClient()
        client.load_host_keys(str(paths.LabPaths.default().root / "known_hosts"))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect("127.0.0.1", port=self.port, username="admin", key_filename=str(self.key),
                       look_for_keys=False, allow_agent=False, timeout=30, banner_timeout=30)
        try:
            _, out, err = client.exec_command(f"sudo -n sh -c {shlex.quote(command)}",
                                              timeout=timeout)
            rc = out.channel.recv_exit_status()
            text = out.read().decode()
            if check and rc != 0:
                pytest.fail(f"{command!r} on {self.name}: exit {rc}: {err.read().decode()}")
            return text
        finally:
            client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node, Path]]:
    say = lambda line: print(f"[lab] {line}")  # noqa: E731
    up = [lab.up("n1", fresh=True, node_index=1, role="server", say=say),
          lab.up("n2", fresh=True, node_index=2, role="agent", say=say)]
    nodes = [Node(u.name, u.port, u.paths.key, f"10.99.0.{i}") for i, u in enumerate(up, 1)]
    data = yaml.safe_load((paths.LabPaths.default().root / "inventory.yaml").read_text())
    data["hosts"] = [h for h in data["hosts"] if h["name"] in ("n1", "n2")]
    for host in data["hosts"]:
        host["key_file"] = str(paths.LabPaths.default().root / host["key_file"])
    data["host"]["ssh"]["known_hosts"] = str(paths.LabPaths.default().root / "known_hosts")
    binary = tmp_path_factory.mktemp("k3s") / "k3s"
    binary.write_text(STANDIN.read_text())
    data["k3s"] = {"airgap": {"binary": str(binary),
                              "binary_sha256": hashlib.sha256(binary.read_bytes()).hexdigest()},
                   "kubeconfig": str(binary.parent / "kubeconfig.yaml"), "ready_seconds": 180}
    inventory = binary.parent / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data))
    try:
        yield nodes[0], nodes[1], inventory
    finally:
        for name in ("n1", "n2"):
            lab.down(name, say=say)


def test_1_both_hosts_harden_with_the_inter_node_rules(cluster: tuple[Node, Node, Path]) -> None:
    n1, n2, inventory = cluster
    runs = [subprocess.Popen([sys.executable, "-m", "invoke", "host.harden", "-i",
                              str(inventory), "--host", name], cwd=REPO, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for name in ("n1", "n2")]
    outputs = [r.communicate(timeout=2400)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    rules = [" ".join(line.split()) for line in n1.run("ufw status").splitlines()]
    assert "8472/udp ALLOW 10.99.0.2" in rules and "10250/tcp ALLOW 10.99.0.2" in rules
    assert not [r for r in rules if r.startswith("2379")]  # one server: no etcd port
    rules2 = [" ".join(line.split()) for line in n2.run("ufw status").splitlines()]
    assert "8472/udp ALLOW 10.99.0.1" in rules2 and "10250/tcp ALLOW 10.99.0.1" in rules2


LISTEN = """
import socket, sys, select
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.99.0.1", 8472))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("10.99.0.1", 10250)); t.listen(5)
seen = []
while len(seen) < 20:
    r, _, _ = select.select([u, t], [], [], 25)
    if not r:
        break
    for s in r:
        if s is u:
            data, peer = u.recvfrom(100); seen.append(("udp", peer[0], data.decode()))
        else:
            c, peer = t.accept(); seen.append(("tcp", peer[0], c.recv(100).decode())); c.close()
for item in seen:
    print(*item)
"""

SEND = """
import socket, sys
src, tag = sys.argv[1], sys.argv[2]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((src, 0))
for _ in range(3):
    u.sendto(tag.encode(), ("10.99.0.1", 8472))
t = socket.socket(); t.bind((src, 0)); t.settimeout(4)
try:
    t.connect(("10.99.0.1", 10250)); t.send(tag.encode())
except OSError as exc:
    print("tcp", exc)
"""


def test_2_node_ports_pass_packets_between_the_nodes_and_not_from_elsewhere(
        cluster: tuple[Node, Node, Path]) -> None:
    n1, n2, _ = cluster
    nic = n2.run("ip -o -4 addr show to 10.99.0.0/24 | awk '{print $2}'").split()[0]
    n2.run(f"ip addr add 10.99.0.77/24 dev {nic} 2>/dev/null || true")  # not a node
    heard: list[str] = []
    listener = threading.Thread(target=lambda: heard.append(n1.run(
        f"python3 -c {shlex.quote(LISTEN)}", timeout=120)))
    listener.start()
    import time
    time.sleep(8)  # the listener is up
    n2.run(f"python3 -c {shlex.quote(SEND)} 10.99.0.2 from-node")
    n2.run(f"python3 -c {shlex.quote(SEND)} 10.99.0.77 from-elsewhere", check=False)
    listener.join()
    lines = set(heard[0].splitlines())
    assert "udp 10.99.0.2 from-node" in lines and "tcp 10.99.0.2 from-node" in lines, lines
    assert not [line for line in lines if "from-elsewhere" in line], lines


def test_3_the_agent_joins_the_server_across_the_nodes_network(
        cluster: tuple[Node, Node, Path]) -> None:
    n1, n2, inventory = cluster
    s = make_session(str(inventory))
    out = io.StringIO()
    s.reporter = Reporter(out)
    assert k3s.run(s, token=lambda _s: TOKEN), out.getvalue()
    s.close()
    assert "server: \"https://10.99.0.1:6443\"" in n2.run("cat /etc/rancher/k3s/config.yaml")
    assert n2.run("systemctl is-active k3s-agent").strip() == "active"
    joined = n1.run("cat /var/lib/rancher/k3s/standin-joined").split()
    assert joined[:2] == ["n2", "10.99.0.2"]
    assert TOKEN not in n1.run("ps -eo args") + n2.run("ps -eo args")
