"""K3s on the server: its config file, PodSecurity admission and audit policy.

Nothing here is a Kubernetes object: the bundle holds only :class:`HostFile` entries that
``k3s.install`` copies to the control-plane host before it starts K3s (spec §2). The
templates live in ``manifests/k3s/host/``; :func:`checks` validates them structurally
because no API server schema covers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.stack.components.k3s_checks import check_host_files
from tasks.stack.render import MANIFESTS, Bundle, HostFile, render_text

NAME = "k3s"

HOST_TEMPLATES = MANIFESTS / "k3s" / "host"
CONFIG = "/etc/rancher/k3s/config.yaml"
PSA = "/etc/rancher/k3s/psa.yaml"
AUDIT_POLICY = "/etc/rancher/k3s/audit-policy.yaml"
# k3s.install writes the token there (0600); the path is no secret.
TOKEN_FILE = "/etc/rancher/k3s/cluster-token"  # noqa: S105
API_PORT = 6443

# (install path, template): all mode 0600, root-only like K3s's own files. The kernel
# settings protect-kernel-defaults needs are host.harden's (tasks/harden/sysctl.py).
FILES = (
    (CONFIG, "config.yaml"),
    (PSA, "psa.yaml"),
    (AUDIT_POLICY, "audit-policy.yaml"),
)


def audit_log(ctx: Mapping[str, Any]) -> str:
    """Where the API server writes its audit log (under the K3s data directory)."""
    return f"{ctx['k3s']['data_dir'].rstrip('/')}/server/logs/audit.log"


def host_context(ctx: Mapping[str, Any], node_name: str,
                 join: str | None = None) -> dict[str, Any]:
    """The template context plus what only the host files use."""
    return {
        **ctx,
        "node": {"name": node_name},
        "join": {"server": join or ""},
        "files": {"psa": PSA, "audit_policy": AUDIT_POLICY, "audit_log": audit_log(ctx),
                  "token": TOKEN_FILE},
    }


def join_url(address: str) -> str:
    """The API of the first server as the other nodes reach it."""
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{API_PORT}"


def server_files(ctx: Mapping[str, Any], node_name: str, *, cluster_init: bool = False,
                 join: str | None = None) -> list[HostFile]:
    """The files for one K3s server named ``node_name`` (its ``node-name``).

    One server keeps the embedded SQLite datastore (spec §2). With several, the first
    starts embedded etcd (``cluster-init``) and the others ``join`` it.
    """
    hctx = host_context(ctx, node_name)
    out = []
    for path, template in FILES:
        source = HOST_TEMPLATES / template
        content = render_text(source, hctx)
        if path == CONFIG and cluster_init:
            content += "# Several servers: embedded etcd, started on this first server.\n" \
                       "cluster-init: true\n"
        if path == CONFIG and join:
            content += f"# Joins the cluster of the first server.\nserver: {join}\n"
        out.append(HostFile(path=path, content=content,
                            source=f"manifests/k3s/host/{template}", mode="0600"))
    return out


def agent_files(ctx: Mapping[str, Any], node_name: str, join: str) -> list[HostFile]:
    """The config of one K3s agent, joining the first server at ``join``."""
    source = HOST_TEMPLATES / "agent-config.yaml"
    return [HostFile(path=CONFIG, content=render_text(source, host_context(ctx, node_name,
                                                                            join)),
                     source="manifests/k3s/host/agent-config.yaml", mode="0600")]


def render(ctx: Mapping[str, Any]) -> Bundle:
    """The control plane's files (the first server of the inventory)."""
    return Bundle(host_files=server_files(ctx, str(ctx["derived"]["server_name"])))


def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """Structural checks of the host files: keys, values, cross-references, modes."""
    return check_host_files(bundle.host_files, ctx, expected={
        "config": CONFIG, "psa": PSA, "audit_policy": AUDIT_POLICY,
        "audit_log": audit_log(ctx), "psa_version": ctx["derived"]["psa_version"],
    })
