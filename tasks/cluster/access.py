"""Reaching the cluster from the operator's machine.

K3s writes the admin kubeconfig on the first server (``/etc/rancher/k3s/k3s.yaml``, mode
0600 by our config). The tasks read it over SSH and, by default, open an SSH tunnel to
the server's 127.0.0.1:6443, so the API port never needs to be reachable from outside;
``k3s.api_access: direct`` talks to https://<address>:6443 instead (open to operators).
The kubeconfig kubectl and helm use lives in a private temporary folder (0700, file
0600) that is removed when the layer ends; the operator's own copy is
``~/.kube/<cluster_name>.yaml`` (written by ``k3s.install``, never ``~/.kube/config``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasks.cli import Session
from tasks.cluster.kube import Tools
from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, optional_text
from tasks.engine.target import LocalTarget, SshTarget, gather
from tasks.model.model import Inventory

NODE_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
API_PORT = 6443
KUBECONFIG_FACT = Fact("k3s:kubeconfig", f"cat {NODE_KUBECONFIG}", optional_text)


@dataclass
class ClusterTarget(LocalTarget):
    """This machine, with kubectl and helm pointed at the cluster."""

    name: str = "cluster"
    tools: Tools = field(default_factory=Tools.find)
    kubeconfig: Path = Path("/dev/null")


def operator_kubeconfig_path(inv: Inventory) -> Path:
    return Path(os.path.expanduser(inv.k3s.kubeconfig or f"~/.kube/{inv.k3s.cluster_name}.yaml"))


def rewrite(text: str, server: str, name: str) -> str:
    """The node's kubeconfig with ``server`` as the API address and every name (cluster,
    user, context) set to ``name``; one line error when it is not a kubeconfig."""
    try:
        data: Any = yaml.safe_load(text)
        cluster = data["clusters"][0]["cluster"]
        user = data["users"][0]["user"]
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        raise UserError(f"{NODE_KUBECONFIG} on the server is not a kubeconfig; is K3s"
                        " healthy there?") from None
    cluster = {**cluster, "server": server}
    out = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return yaml.safe_dump(out, sort_keys=False)


class ClusterUnreadable(UserError):
    """K3s is not installed on the first server yet: there is no cluster to read."""


def read_node_kubeconfig(target: SshTarget) -> str:
    text = gather(target, [KUBECONFIG_FACT])[KUBECONFIG_FACT]
    if not text:
        raise ClusterUnreadable(f"{target.name}: K3s is not installed yet"
                                f" (no {NODE_KUBECONFIG}): run inv k3s.install first")
    return text


@contextmanager
def private_kubeconfig(text: str) -> Iterator[Path]:
    """``text`` in a 0600 file inside a 0700 folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="stack-kube-"))
    try:
        path = folder / "kubeconfig"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def cluster(session: Session) -> Iterator[ClusterTarget]:
    """kubectl and helm on this machine, reaching the cluster's API."""
    inv = session.inventory.data
    server = inv.servers[0]
    name = inv.k3s.cluster_name
    tools = session.tools()
    with contextlib.ExitStack() as stack:
        ssh = session.connect(server)
        before = ssh.round_trips
        text = session.node_kubeconfig.get(server.name) or read_node_kubeconfig(ssh)
        session.node_kubeconfig[server.name] = text
        if inv.k3s.api_access == "tunnel":
            port = stack.enter_context(ssh.tunnel("127.0.0.1", API_PORT))
            url = f"https://127.0.0.1:{port}"
        else:
            url = f"https://{server.address}:{API_PORT}"
        path = stack.enter_context(private_kubeconfig(rewrite(text, url, name)))
        target = ClusterTarget(name=f"cluster {name}", tools=tools, kubeconfig=path,
                               env=tools.env(path))
        try:
            yield target
        finally:
            session.summary.add_round_trips(server.name, ssh.round_trips - before)
