"""What to read before a version moves: each component's upstream release notes and
upgrade guide for the target version, and what its upgrade does not do by itself.

URLs follow each project's own scheme: K3s's GitHub releases (tag ``v1.33.4+k3s1``, the
``+`` escaped), Kubernetes's CHANGELOG of a new minor ("Urgent Upgrade Notes"),
cert-manager's per-minor upgrade pages (``upgrading-1.13-1.14``, one per minor step: it
says to upgrade through the versions) and release notes, kube-prometheus-stack's
UPGRADE.md (a section per major, ``From 84.x to 85.x``, with the CRDs to apply), the
charts' release tags (chart-releaser's ``<chart>-<version>``), Strimzi's CHANGELOG and
upgrade chapter, Apache Kafka's upgrade notes, Flux's releases.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from tasks.upgrade.versions import minor, semver

#: Helm installs a chart's ``crds/`` folder on install and never touches it again
#: (helm.sh/docs/chart_best_practices/custom_resource_definitions).
HELM_CRDS = ("Helm never upgrades the CRDs of a chart's crds/ folder: inv upgrade applies"
             " the new chart's CRDs server-side before the chart, as its notes say")
STRIMZI_FIRST = ("Strimzi upgrades Kafka only with an operator that supports both versions:"
                 " kafka.deploy upgrades the operator first, then the Kafka CR (a rolling"
                 " restart of the brokers)")


@dataclass(frozen=True)
class Notes:
    urls: tuple[str, ...] = ()
    #: What the upgrade does not do by itself, in one line each.
    warnings: tuple[str, ...] = ()


def _minors(current: str, wanted: str) -> list[tuple[int, int]]:
    """The (major, minor) steps from ``current`` to ``wanted``, same major only:
    1.13 -> 1.15 gives [(1, 14), (1, 15)]."""
    a, b = minor(current), minor(wanted)
    if a is None or b is None or a[0] != b[0]:
        return [] if b is None or b == a else [b]
    return [(a[0], m) for m in range(a[1] + 1, b[1] + 1)]


def k3s(current: str, wanted: str) -> Notes:
    urls = [f"https://github.com/k3s-io/k3s/releases/tag/{quote(wanted, safe='')}"]
    urls += [f"https://github.com/kubernetes/kubernetes/blob/master/CHANGELOG/"
             f"CHANGELOG-{a}.{b}.md#urgent-upgrade-notes" for a, b in _minors(current, wanted)]
    return Notes(tuple(urls))


def cert_manager(current: str, wanted: str) -> Notes:
    steps = _minors(current, wanted)
    now = minor(current)
    urls = []
    for a, b in steps:
        before = (a, b - 1) if b > 0 else now
        if before is not None:
            urls.append(f"https://cert-manager.io/docs/releases/upgrading/upgrading-"
                        f"{before[0]}.{before[1]}-{a}.{b}")
    target = minor(wanted)
    if target is not None:
        urls.append(f"https://cert-manager.io/docs/releases/release-notes/release-notes-"
                    f"{target[0]}.{target[1]}")
    return Notes(tuple(urls))


def kube_prometheus_stack(current: str, wanted: str) -> Notes:
    urls = [f"https://github.com/prometheus-community/helm-charts/releases/tag/"
            f"kube-prometheus-stack-{wanted}"]
    a, b = semver(current), semver(wanted)
    majors = range(a[0][0] + 1, b[0][0] + 1) if a and b else range(0)
    urls += [f"https://github.com/prometheus-community/helm-charts/blob/main/charts/"
             f"kube-prometheus-stack/UPGRADE.md#from-{m - 1}x-to-{m}x" for m in majors]
    return Notes(tuple(urls), (HELM_CRDS,) if majors else ())


def strimzi(current: str, wanted: str) -> Notes:
    return Notes((f"https://github.com/strimzi/strimzi-kafka-operator/blob/{wanted}/CHANGELOG.md",
                  f"https://strimzi.io/docs/operators/{wanted}/deploying#assembly-upgrade-str"),
                 (HELM_CRDS,))


def kafka(current: str, wanted: str, strimzi_version: str) -> Notes:
    target = minor(wanted)
    urls = [f"https://strimzi.io/docs/operators/{strimzi_version}/deploying"
            "#assembly-upgrading-kafka-versions-str"]
    if target is not None:
        urls.append(f"https://kafka.apache.org/{target[0]}{target[1]}/documentation.html#upgrade")
    return Notes(tuple(urls), (STRIMZI_FIRST,))


def flux2(current: str, wanted: str, flux_version: str) -> Notes:
    return Notes((f"https://github.com/fluxcd/flux2/releases/tag/v{flux_version}",
                  f"https://github.com/fluxcd-community/helm-charts/releases/tag/flux2-{wanted}"))


def loki(current: str, wanted: str) -> Notes:
    return Notes((f"https://github.com/grafana-community/helm-charts/releases/tag/loki-{wanted}",))


def alloy(current: str, wanted: str) -> Notes:
    return Notes(("https://github.com/grafana/alloy/blob/main/operations/helm/charts/alloy/"
                  "CHANGELOG.md",))


def apps(current: str, wanted: str) -> Notes:
    return Notes((), ("our own chart: its changes are in this repository's history"
                      " (git log -- charts/apps)",))
