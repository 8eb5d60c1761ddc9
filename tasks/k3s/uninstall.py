"""``k3s.uninstall``: K3s and all its data off a node, behind a typed confirmation.

Stops K3s and what it started (containers, their mounts, the CNI interfaces), then
removes the binary, our unit, /etc/rancher/k3s (token included) and the data directory.
Check-then-act like every step: a node without K3s is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts
from tasks.engine.shell import q
from tasks.engine.step import Change, Step
from tasks.k3s.binary import BINARY
from tasks.k3s.node import UNIT_DIR
from tasks.k3s.service import STAMP

LEFTOVERS = [BINARY, f"{UNIT_DIR}/k3s.service", f"{UNIT_DIR}/k3s-agent.service",
             "/etc/rancher/k3s", "/var/lib/kubelet", "/run/k3s", STAMP]


class K3sRemoved(Step):
    id = "k3s-removed"
    name = "k3s: removed with its data"

    def __init__(self, data_dir: str) -> None:
        self.paths = [*LEFTOVERS, data_dir.rstrip("/")]
        self.fact = Fact("k3s:leftovers", "for p in " + " ".join(q(p) for p in self.paths)
                         + '; do [ -e "$p" ] && echo "$p"; done; true',
                         lambda raw: [line for line in raw.stdout.splitlines() if line])

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.fact]

    def plan(self, facts: Facts) -> list[Change]:
        found: list[str] = facts[self.fact]
        if not found:
            return []
        script = "\n".join([
            "for s in k3s k3s-agent; do systemctl disable --now \"$s\" >/dev/null 2>&1 || true;"
            " done",
            # containerd shims outlive the service (KillMode=process): stop them too.
            "pkill -f 'containerd-shim.*k3s' >/dev/null 2>&1 || true",
            "for m in $(awk '$2 ~ \"^(/run/k3s|/var/lib/kubelet|/var/lib/rancher)\""
            " {print $2}' /proc/self/mounts | sort -r); do umount -l \"$m\" || true; done",
            "for i in cni0 flannel.1 flannel-v6.1 kube-ipvs0; do ip link delete \"$i\""
            " >/dev/null 2>&1 || true; done",
            "rm -rf " + " ".join(q(p) for p in self.paths),
            "systemctl daemon-reload",
            "command -v ufw >/dev/null && ufw status | grep -q '^Status: active' &&"
            " ufw --force reload >/dev/null || true",
        ]) + "\n"
        return [Change(f"stop K3s and remove {', '.join(found)}", script)]
