"""The cluster's checks: plain values in (tasks/status/cluster_reads.py), findings out.

Healthy objects of one namespace share one line (one screen: a converged platform has
some 25 workloads); each one that is not healthy gets its own line with what to do.
``None`` for a read means its kind is not served: the component that brings it is not
installed, which is unhealthy, said with the task that installs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tasks.cluster.kube import ReleaseState
from tasks.stack.render import Release
from tasks.status.cluster_reads import Certificate, Claim, Node, Resource, Usage, Workload
from tasks.status.findings import Finding, bad, ok, warn

#: A certificate expiring sooner is a warning (cert-manager renews 30 days before).
EXPIRY_WARN_DAYS = 14
#: A volume fuller than this is a warning.
USAGE_WARN_PERCENT = 85

def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def nodes(found: Sequence[Node], k3s_version: str) -> list[Finding]:
    if not found:
        return [bad("nodes", "nodes", "the API lists no node", "inv k3s.install")]
    out = []
    for node in found:
        ready = node.ready
        if ready is None or ready.status != "True":
            why = f"{ready.reason}: {ready.message}" if ready else "no Ready condition"
            out.append(bad("nodes", node.name, f"not Ready ({why})",
                           f"journalctl -u k3s on {node.name}; inv k3s.install"))
        elif node.kubelet != k3s_version:
            out.append(bad("nodes", node.name, f"Ready, kubelet {node.kubelet}, want"
                           f" {k3s_version} (versions.k3s)", "inv k3s.install"))
        else:
            out.append(ok("nodes", node.name, f"Ready, kubelet {node.kubelet}"))
    return out


def releases(listed: dict[tuple[str, str], ReleaseState],
             ours: Sequence[tuple[str, Release]]) -> list[Finding]:
    """``ours``: each release with the task that installs it (its layer)."""
    out = []
    for layer, r in ours:
        name, fix = f"{r.namespace}/{r.name}", f"inv {layer}"
        state = listed.get((r.namespace, r.name))
        want = f"{r.chart}-{r.version}"
        if state is None:
            out.append(bad("releases", name, f"not installed (want {want})", fix))
        elif state.status != "deployed":
            out.append(bad("releases", name, f"{state.status} (revision {state.revision},"
                           f" {state.chart})", f"{fix} (helm history {r.name} -n"
                           f" {r.namespace} says why)"))
        elif state.chart != want:
            out.append(bad("releases", name, f"deployed {state.chart}, want {want}", fix))
        else:
            out.append(ok("releases", name, f"deployed {state.chart}, revision"
                          f" {state.revision}"))
    return out


def workloads(found: Sequence[Workload]) -> list[Finding]:
    out: list[Finding] = []
    healthy: dict[str, list[str]] = {}
    for w in found:
        if w.available >= w.wanted:
            healthy.setdefault(w.namespace, []).append(w.kind)
            continue
        why = f": {w.message}" if w.message else ""
        out.append(bad("workloads", f"{w.kind} {w.namespace}/{w.name}",
                       f"{w.available}/{w.wanted} available{why}",
                       f"kubectl -n {w.namespace} describe {w.kind.lower()} {w.name}"))
    if not found:
        return [bad("workloads", "workloads", "no Deployment or StatefulSet at all",
                    "inv deploy.all")]
    oks = [ok("workloads", ns, "all available: " + ", ".join(
        _count(kinds.count(k), k) for k in ("Deployment", "StatefulSet") if k in kinds))
        for ns, kinds in sorted(healthy.items())]
    return oks + out


def _days(delta: dt.timedelta) -> str:
    days = delta.days
    return f"{days} day" if days == 1 else f"{days} days"


def certificates(found: Sequence[Certificate] | None, now: dt.datetime) -> list[Finding]:
    if found is None:
        return [bad("certificates", "cert-manager", "no Certificate kind: cert-manager is not"
                    " installed", "inv ingress.certs")]
    if not found:
        return [bad("certificates", "certificates", "no Certificate at all (the apps'"
                    " Ingress makes one)", "inv apps.deploy")]
    out = []
    for c in found:
        name = f"{c.namespace}/{c.name}"
        describe = f"kubectl -n {c.namespace} describe certificate {c.name}"
        expires = c.not_after.strftime("%Y-%m-%d %H:%M UTC") if c.not_after else "unknown"
        left = c.not_after - now if c.not_after else None
        if c.not_after is not None and left is not None and left <= dt.timedelta(0):
            out.append(bad("certificates", name, f"expired {expires}", describe))
        elif c.ready is None or c.ready.status != "True":
            why = c.ready.message if c.ready and c.ready.message else "no Ready condition"
            out.append(bad("certificates", name, f"not Ready: {why}",
                           f"inv apps.deploy says why; {describe}"))
        elif left is not None and left < dt.timedelta(days=EXPIRY_WARN_DAYS):
            out.append(warn("certificates", name, f"Ready, expires {expires} (in"
                            f" {_days(left)}): not renewed", describe))
        else:
            more = f" (in {_days(left)})" if left is not None else ""
            out.append(ok("certificates", name, f"Ready, expires {expires}{more}"))
    return out


def _ready(r: Resource) -> bool:
    return r.ready is not None and r.ready.status == "True"


def _why(r: Resource) -> str:
    if r.ready is None:
        return "no Ready condition yet"
    return f"{r.ready.reason}: {r.ready.message}" if r.ready.reason else r.ready.message


def short(revision: str) -> str:
    """``main@sha1:4f2a9c1e`` for ``main@sha1:<40 hex>``, as ``flux get`` shows it."""
    ref, sep, digest = revision.partition(":")
    return f"{ref}{sep}{digest[:8]}" if sep and "@" in ref else revision


def flux(found: Sequence[Resource] | None, wanted: Sequence[str]) -> list[Finding]:
    """``wanted``: ``Kind/namespace/name`` of the sync objects flux.bootstrap makes."""
    if found is None:
        return [bad("flux", "flux", "no Kustomization kind: Flux is not installed",
                    "inv flux.bootstrap")]
    out = []
    by_key = {f"{r.kind}/{r.namespace}/{r.name}": r for r in found}
    for key in [*wanted, *(k for k in by_key if k not in wanted)]:
        kind, namespace, name = key.split("/", 2)
        label = f"{kind} {namespace}/{name}"
        r = by_key.get(key)
        if r is None:
            out.append(bad("flux", label, "not there", "inv flux.bootstrap"))
        elif not _ready(r):
            out.append(bad("flux", label, f"not Ready ({_why(r)})",
                           f"kubectl -n {namespace} describe {kind.lower()} {name}"))
        else:
            what = "applied" if kind == "Kustomization" else "revision"
            out.append(ok("flux", label, f"Ready, {what} {short(r.revision) or 'unknown'}"))
    return out


def kafka(found: Sequence[Resource] | None, namespace: str, cluster: str,
          topics: Sequence[str]) -> list[Finding]:
    if found is None:
        return [bad("kafka", "strimzi", "no Kafka kind: Strimzi is not installed",
                    "inv kafka.deploy")]
    by_key = {(r.kind, r.name): r for r in found}
    out = []
    k = by_key.get(("Kafka", cluster))
    label = f"Kafka {namespace}/{cluster}"
    if k is None:
        out.append(bad("kafka", label, "not there", "inv kafka.deploy"))
    elif not _ready(k):
        out.append(bad("kafka", label, f"not Ready ({_why(k)})",
                       f"kubectl -n {namespace} describe kafka {cluster}"))
    else:
        out.append(ok("kafka", label, "Ready"))
    ready: list[str] = []
    for topic in topics:
        t = by_key.get(("KafkaTopic", topic))
        if t is None:
            out.append(bad("kafka", f"KafkaTopic {topic}", "not there", "inv kafka.deploy"))
        elif not _ready(t):
            out.append(bad("kafka", f"KafkaTopic {topic}", f"not Ready ({_why(t)})",
                           f"kubectl -n {namespace} describe kafkatopic {topic}"))
        else:
            ready.append(topic)
    if ready:
        out.insert(1, ok("kafka", "topics", f"{len(ready)} of {len(topics)} KafkaTopics Ready"))
    return out


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f}{unit}" if unit != "B" else f"{n}B"
        value /= 1024
    return f"{n}B"  # pragma: no cover - the loop always returns


def volumes(found: Sequence[Claim], used: dict[tuple[str, str], Usage]) -> list[Finding]:
    out = []
    for c in found:
        name = f"{c.namespace}/{c.name}"
        if c.phase != "Bound":
            out.append(bad("volumes", name, f"{c.phase or 'no phase'}, not Bound",
                           f"kubectl -n {c.namespace} describe pvc {c.name}"))
            continue
        u = used.get((c.namespace, c.name))
        if u is None or u.capacity <= 0:
            out.append(ok("volumes", name, f"Bound {c.capacity}, usage not reported by the"
                          " kubelet"))
            continue
        percent = 100 * u.used / u.capacity
        detail = f"Bound {c.capacity}, {_size(u.used)} of {_size(u.capacity)} used" \
                 f" ({percent:.0f}%)"
        if percent > USAGE_WARN_PERCENT:
            out.append(warn("volumes", name, detail, f"grow the claim or free space (over"
                            f" {USAGE_WARN_PERCENT}%)"))
        else:
            out.append(ok("volumes", name, detail))
    return out
