"""K3s running on the node, restarted only when its binary, config, token or unit changed.

The upstream install script does not notice a changed config; here the checksums of
everything K3s reads at start, and its process id, are recorded when it starts
(``STAMP``): a run that finds them different (edited files, a new binary, a run killed
before the restart, K3s restarted by someone else with files we did not write) restarts it,
then waits for the node to be Ready (and, on servers, the default ServiceAccount) within
``k3s.ready_seconds``. A converged node costs no restart and no wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasks.cluster.access import KUBECONFIG_FACT
from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.shell import progress, q
from tasks.engine.step import Change, Step
from tasks.k3s.binary import BINARY
from tasks.k3s.node import Node
from tasks.stack.components.k3s import TOKEN_FILE

STAMP = "/var/lib/stack/k3s.started-with"


@dataclass(frozen=True)
class Running:
    active: str  # systemctl is-active
    enabled: str
    stamp: str  # checksums recorded at the last start
    now: str  # checksums of the same files now
    ready: str  # the node's Ready condition as `k3s kubectl` sees it (servers), else ""


def _running(raw: Raw) -> Running:
    parts = raw.stdout.split("@@\n")
    parts += [""] * (5 - len(parts))
    active, enabled, stamp, now, ready = (p.strip() for p in parts[:5])
    return Running(active, enabled, stamp, now, ready)


class K3sService(Step):
    id = "k3s-service"
    name = "k3s: running, node Ready"

    def __init__(self, node: Node, files: Sequence[str], ready_seconds: int) -> None:
        self.node, self.ready_seconds = node, ready_seconds
        self.inputs = [BINARY, *files, TOKEN_FILE, node.unit_path]
        sums = self._sums() + " 2>&1"
        ready = (f"{BINARY} kubectl get node {q(node.host.name)} -o"
                 " jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' 2>/dev/null"
                 if node.role == "server" else "true")
        service = q(node.service)
        self.fact = Fact(f"k3s:running:{node.service}",
                         f"systemctl is-active {service}; echo '@@'; systemctl is-enabled"
                         f" {service}; echo '@@'; cat {STAMP} 2>/dev/null; echo '@@'; {sums};"
                         f" echo '@@'; {ready}", _running)

    def _sums(self) -> str:
        """Shell printing what K3s started with: the inputs' checksums and its main pid."""
        return ("{ sha256sum " + " ".join(q(p) for p in self.inputs)
                + f"; echo pid $(systemctl show -p MainPID --value {q(self.node.service)}); }}")

    def facts(self) -> Sequence[Fact[Any]]:
        # The first server's admin kubeconfig comes with the same batch: the operator's
        # copy and the cluster layers then cost no round trip of their own.
        return [self.fact, KUBECONFIG_FACT] if self.node.first else [self.fact]

    def problems(self, facts: Facts) -> list[str]:
        r: Running = facts[self.fact]
        out = []
        if r.active != "active":
            out.append(f"{self.node.service} is {r.active or 'not installed'}")
        elif r.stamp != r.now:
            out.append("binary, config, token or unit changed since K3s started (or it was"
                       " restarted by something else)")
        if r.enabled != "enabled":
            out.append(f"{self.node.service} is not enabled at boot")
        if self.node.role == "server" and r.active == "active" and r.ready != "True":
            out.append(f"node {self.node.host.name} is not Ready ({r.ready or 'unknown'})")
        return out

    def plan(self, facts: Facts) -> list[Change]:
        problems = self.problems(facts)
        if not problems:
            return []
        r: Running = facts[self.fact]
        restart = r.active != "active" or r.stamp != r.now
        return [Change(f"{'restart' if restart else 'check'} {self.node.service}: {problems[0]}",
                       self._script(restart))]

    def _script(self, restart: bool) -> str:
        service, name = q(self.node.service), q(self.node.host.name)
        sums = self._sums()
        lines = [f"systemctl enable {service} >/dev/null 2>&1"]
        if restart:
            lines += [progress(f"starting {self.node.service} (waits for the node to be Ready,"
                               f" up to {self.ready_seconds}s)").rstrip(),
                      "systemctl daemon-reload", f"systemctl restart {service}"]
        wait = self.ready_seconds
        if self.node.role == "server":
            lines += [
                f"deadline=$(( $(date +%s) + {wait} ))",
                f"until [ \"$({BINARY} kubectl get node {name} -o jsonpath="
                "'{.status.conditions[?(@.type==\"Ready\")].status}' 2>/dev/null)\" = True ]"
                f" && {BINARY} kubectl get serviceaccount default -n default >/dev/null 2>&1;"
                " do",
                "  if [ \"$(date +%s)\" -ge \"$deadline\" ]; then",
                f"    echo \"node {self.node.host.name} not Ready after {wait}s; last log"
                f" lines:\" >&2; journalctl -u {service} -n 5 --no-pager >&2; exit 1",
                "  fi",
                "  sleep 3",
                "done",
            ]
        else:
            lines += [
                f"deadline=$(( $(date +%s) + {wait} ))",
                f"until systemctl is-active --quiet {service}; do",
                "  if [ \"$(date +%s)\" -ge \"$deadline\" ]; then",
                f"    journalctl -u {service} -n 5 --no-pager >&2; exit 1",
                "  fi",
                "  sleep 3",
                "done",
            ]
        lines += [f"mkdir -p {q(STAMP.rsplit('/', 1)[0])}",
                  f"{sums} >{STAMP}.tmp 2>&1 && mv -f {STAMP}.tmp {STAMP}"]
        return "\n".join(lines) + "\n"

    def verify(self, facts: Facts) -> list[str]:
        return self.problems(facts)
