"""``k3s.install``: K3s on every host, servers first, each node Ready before the next.

Per host: the binary at ``versions.k3s`` (downloaded and checked, or uploaded from
``k3s.airgap``), the air-gap images when given, the config and policy files, the
cluster token and our unit, then K3s (re)started only when any of those changed. A
version bump in the inventory is the upgrade: hosts converge one at a time, servers
first, and each waits for its node to be Ready. Afterwards the operator's kubeconfig
(``~/.kube/<cluster_name>.yaml``, 0600) is written from the first server's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tasks.cli import Session
from tasks.cluster.access import (
    KUBECONFIG_FACT,
    operator_kubeconfig_path,
    read_node_kubeconfig,
    rewrite,
)
from tasks.engine.step import Step
from tasks.engine.target import SshTarget
from tasks.harden.packages import Packages
from tasks.k3s.binary import Airgap, Images, K3sBinary, K3sImages
from tasks.k3s.files import K3sFiles
from tasks.k3s.node import host_files, nodes
from tasks.k3s.service import K3sService
from tasks.layer import HostLayer, run_host_layer
from tasks.localfile import write_atomic
from tasks.model.model import Host
from tasks.stack.components.k3s import API_PORT
from tasks.stack.context import context

#: Where the cluster token comes from (the SOPS-encrypted secrets store); replaced in tests.
TokenSource = Callable[[Session], str]


def steps(session: Session, host: Host, token: Callable[[], str]) -> list[Step]:
    inv = session.inventory.data
    node = nodes(inv)[host.name]
    files = host_files(context(inv), node)
    air = inv.k3s.airgap
    plan: list[Step] = []
    if air is None:
        plan.append(Packages(("curl",), base=()))  # to download K3s on the host
    binary = None if air is None else Airgap(session.inventory.resolve(air.binary),
                                             air.binary_sha256, air.arch)
    plan.append(K3sBinary(inv.versions.k3s, binary))
    if air is not None and air.images and air.images_sha256:
        plan.append(K3sImages(Images(session.inventory.resolve(air.images), air.images_sha256),
                              inv.k3s.data_dir))
    plan += [K3sFiles(node, files, inv.k3s.data_dir, token),
             K3sService(node, [f.path for f in files], inv.k3s.ready_seconds)]
    return plan


def write_operator_kubeconfig(session: Session, host: Host, target: SshTarget) -> None:
    """The first server's admin kubeconfig for the operator: server rewritten to the VPS,
    context named after the cluster, mode 0600; said when it changed."""
    inv = session.inventory.data
    if session.check or host.name != inv.servers[0].name:
        return
    address = host.address if ":" not in host.address else f"[{host.address}]"
    facts = session.summary.last_facts.get(host.name)
    node = facts[KUBECONFIG_FACT] if facts is not None and KUBECONFIG_FACT in facts else None
    node = node or read_node_kubeconfig(target)
    session.node_kubeconfig[host.name] = node
    text = rewrite(node, f"https://{address}:{API_PORT}", inv.k3s.cluster_name)
    path = operator_kubeconfig_path(inv)
    if path.is_file() and path.read_text() == text and (path.stat().st_mode & 0o777) == 0o600:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, text, 0o600)
    session.reporter.note(host.name, f"wrote {_shown(path)} (context {inv.k3s.cluster_name};"
                          " kubectl --kubeconfig it, or through an SSH tunnel when the API"
                          " is not open to you)")


def _shown(path: Path) -> str:
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + "/") else str(path)


def layer(token: TokenSource) -> HostLayer:
    return HostLayer("k3s.install",
                     lambda s, h, _t: steps(s, h, lambda: token(s)),
                     after=(lambda s, h, t: write_operator_kubeconfig(s, h, t),))


def stored_token(session: Session) -> str:
    """The cluster token from the encrypted secrets store (made once by secrets.init)."""
    from tasks.secrets.store import SecretStore

    return SecretStore.open(session.inventory).value("secret-k3s", "token")


def run(session: Session, token: TokenSource = stored_token) -> bool:
    return run_host_layer(session, layer(token))
