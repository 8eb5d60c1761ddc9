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


def host_context(ctx: Mapping[str, Any], node_name: str) -> dict[str, Any]:
    """The template context plus what only the host files use."""
    return {
        **ctx,
        "node": {"name": node_name},
        "files": {"psa": PSA, "audit_policy": AUDIT_POLICY, "audit_log": audit_log(ctx)},
    }


def server_files(ctx: Mapping[str, Any], node_name: str) -> list[HostFile]:
    """The files for one K3s server named ``node_name`` (its ``node-name``)."""
    hctx = host_context(ctx, node_name)
    out = []
    for path, template in FILES:
        source = HOST_TEMPLATES / template
        out.append(HostFile(path=path, content=render_text(source, hctx),
                            source=f"manifests/k3s/host/{template}", mode="0600"))
    return out


def render(ctx: Mapping[str, Any]) -> Bundle:
    """The control plane's files (the first server of the inventory)."""
    return Bundle(host_files=server_files(ctx, str(ctx["derived"]["server_name"])))


def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """Structural checks of the host files: keys, values, cross-references, modes."""
    return check_host_files(bundle.host_files, ctx, expected={
        "config": CONFIG, "psa": PSA, "audit_policy": AUDIT_POLICY,
        "audit_log": audit_log(ctx), "psa_version": ctx["derived"]["psa_version"],
    })
