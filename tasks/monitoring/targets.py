"""Prometheus's scrape targets, read through the API server's service proxy.

``kubectl get --raw /api/v1/namespaces/monitoring/services/<service>:<port>/proxy/api/v1/
targets?state=active`` asks Prometheus itself (no port-forward, nothing exposed). The
answer is the Prometheus HTTP API's ``/api/v1/targets`` (prometheus/prometheus
docs/querying/api.md, "Targets")::

    {"status": "success", "data": {"activeTargets": [{"labels": {"job": "...",
     "instance": "..."}, "scrapePool": "...", "scrapeUrl": "...", "lastError": "",
     "health": "up" | "down" | "unknown", ...}], "droppedTargets": [...]}}

The targets the spec names (section 6) are found by the ``job`` label kube-prometheus-stack
85.4.0's ServiceMonitors give them (templates/exporters/*: ``jobLabel`` picks a label of
the scraped Service) and, for the kubelet's two endpoints, by ``metrics_path`` (the
chart's kubelet relabelings copy ``__metrics_path__`` into it).

Run as a program (``python targets.py SECONDS -- ARGV...``, ARGV being that kubectl
call), it waits until every wanted target is up, trying again every few seconds until
SECONDS have passed (like :mod:`tasks.cluster.until`): exit 0 when they are, 1 with the
problems on stderr when the deadline passed. Only the standard library is used here, so
the program runs from its path alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

NAMESPACE = "monitoring"
PAUSE = 3.0
#: Our monitors and kube-prometheus-stack's live in namespace monitoring: a target of
#: theirs that is down is this layer's problem. Applications' own monitors (namespace
#: app, kafka) and the annotated pods (job kubernetes-pods) are the apps' business.
OWN_POOLS = (f"serviceMonitor/{NAMESPACE}/", f"podMonitor/{NAMESPACE}/")


@dataclass(frozen=True)
class Wanted:
    """A target the spec asks for: its name in the spec, its job, its path if it matters."""

    label: str
    job: str
    path: str | None = None

    def matches(self, target: Target) -> bool:
        return target.job == self.job and (self.path is None or target.path == self.path)

    @property
    def shown(self) -> str:
        return f"job {self.job}" + (f" {self.path}" if self.path else "")


#: spec section 6 (and 3: Traefik's metrics). Job names: apiserver (the Service
#: default/kubernetes, label component), kubelet (the operator's kube-system
#: kube-prometheus-stack-kubelet, label k8s-app), node-exporter, kube-controller-manager,
#: kube-scheduler, kube-proxy (label jobLabel of the chart's Services), traefik (ours,
#: manifests/monitoring/servicemonitors.yaml).
WANTED = (
    Wanted("API server", "apiserver"),
    Wanted("kubelet", "kubelet", "/metrics"),
    Wanted("cAdvisor", "kubelet", "/metrics/cadvisor"),
    Wanted("node exporter", "node-exporter"),
    Wanted("controller manager", "kube-controller-manager"),
    Wanted("scheduler", "kube-scheduler"),
    Wanted("proxy", "kube-proxy"),
    Wanted("Traefik", "traefik"),
)


@dataclass(frozen=True)
class Target:
    job: str
    path: str  # the metrics path: label metrics_path, else the scrape URL's
    instance: str
    health: str  # "up", "down" or "unknown" (not scraped yet)
    error: str  # lastError
    pool: str  # scrapePool: "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/1"


@dataclass(frozen=True)
class Targets:
    """What Prometheus answered; ``silent`` says why it did not (not installed yet...)."""

    targets: tuple[Target, ...] = ()
    silent: str | None = None


def proxy_path(service: str, port: str) -> str:
    """The API server's proxy path to Prometheus's targets API (active targets only)."""
    return (f"/api/v1/namespaces/{NAMESPACE}/services/{service}:{port}/proxy/api/v1/targets"
            "?state=active")


def parse(stdout: str) -> tuple[Target, ...]:
    """The active targets of a ``/api/v1/targets`` answer; ValueError when it is not one."""
    data = json.loads(stdout)
    if not isinstance(data, dict) or data.get("status") != "success":
        error = data.get("error") if isinstance(data, dict) else None
        raise ValueError(f"Prometheus answered {str(error or data)[:200]}")
    out = []
    for item in (data.get("data") or {}).get("activeTargets") or []:
        labels = item.get("labels") or {}
        url = str(item.get("scrapeUrl") or "")
        out.append(Target(
            job=str(labels.get("job", "")),
            path=str(labels.get("metrics_path") or urlsplit(url).path or "/metrics"),
            instance=str(labels.get("instance") or urlsplit(url).netloc),
            health=str(item.get("health", "unknown")),
            error=" ".join(str(item.get("lastError") or "").split()),
            pool=str(item.get("scrapePool", ""))))
    return tuple(out)


def problems(targets: tuple[Target, ...], wanted: tuple[Wanted, ...] = WANTED) -> list[str]:
    """One line per problem: first the names of what is not up (so a capped line keeps
    them), then, per job, where and why (Prometheus's lastError)."""
    missing = [w for w in wanted if not any(w.matches(t) for t in targets)]
    down: dict[tuple[str, str], list[Target]] = {}
    for t in targets:
        want = next((w for w in wanted if w.matches(t)), None)
        if t.health != "up" and (want is not None or t.pool.startswith(OWN_POOLS)):
            down.setdefault((t.job, t.path if want and want.path else ""), []).append(t)
    if not missing and not down:
        return []

    def name(job: str, path: str) -> str:
        want = next((w for w in wanted if w.job == job and w.path in (None, path or None)),
                    None)
        return f"{want.label} ({want.shown})" if want else f"job {job}"

    names = [f"{w.label} ({w.shown})" for w in missing] + [name(*k) for k in down]
    out = [f"Prometheus targets not up: {', '.join(names)}"]
    out += [f"{w.label}: no target of {w.shown} in Prometheus (is its ServiceMonitor"
            " applied, and its Service there?)" for w in missing]
    for (job, path), items in down.items():
        first = items[0]
        state = "not scraped yet" if first.health == "unknown" else "down"
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        why = f": {first.error[:160]}" if first.error else ""
        out.append(f"{name(job, path)} {state} on {first.instance}{why}{more}")
    return out


def silent_cause(stderr: str) -> str | None:
    """Why Prometheus did not answer, when the API server says it cannot (the Service is
    not there yet, or has no ready endpoint); None for any other failure.

    The real kubectl 1.33.9 prints the API server's Status on a proxy request as
    ``Error from server (NotFound): services "x" not found`` and ``Error from server
    (ServiceUnavailable): no endpoints available for service "x"``."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    for marker in ("(NotFound)", "(ServiceUnavailable)", "no endpoints available",
                   "(InternalError)", "unable to handle the request"):
        if marker in last:
            return last.removeprefix("Error from server ")[:200]
    return None


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--" or not argv[1].isdigit():
        print("usage: python targets.py SECONDS -- ARGV...", file=sys.stderr)
        return 2
    deadline = time.monotonic() + int(argv[1])
    while True:
        proc = subprocess.run(argv[3:], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            try:
                left = problems(parse(proc.stdout))
            except ValueError as exc:
                left = [str(exc)]
        else:
            lines = proc.stderr.strip().splitlines()
            left = [lines[-1] if lines else f"exit {proc.returncode}"]
        if not left:
            return 0
        if time.monotonic() + PAUSE > deadline:
            print("\n".join(left), file=sys.stderr)
            return 1
        time.sleep(PAUSE)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
