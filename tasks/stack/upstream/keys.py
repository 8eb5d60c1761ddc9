"""Every key of our values files must be a value of the chart (a typo is a silent no-op).

Helm accepts any key: ``prometheus.prometheusSpec.retenion: 7d`` installs a chart that
keeps its default retention. So every leaf path of ``helm-values/<release>.yaml`` must
exist in the chart's ``values.yaml``, or (below a subchart's key) in the subchart's,
recursively. Below a key whose default is an empty map or null, or a Kubernetes
structure the charts copy as it is, anything goes. A few keys the charts document only
as comments, or maps they pass through whole, are listed in :data:`PASS_THROUGH`, each
with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tasks.stack.render import Release
from tasks.stack.upstream.archive import ChartTree

# (chart, dotted key): why any key below it is fine although the chart's values.yaml
# does not list it.
PASS_THROUGH: dict[tuple[str, str], str] = {
    ("kube-prometheus-stack", "grafana.persistence.storageClassName"):
        "the grafana chart documents it only as a comment of its values.yaml",
    ("kube-prometheus-stack", "grafana.grafana.ini"):
        "Grafana's grafana.ini, written out section by section as it is",
    ("loki", "loki.limits_config"):
        "Loki's limits_config, copied into Loki's configuration as it is",
    ("flux2", "cli.resources"):
        "read by the chart's pre-install check Job (templates/pre-install-job.yaml) but"
        " absent from its values.yaml",
}

# Kubernetes structures the charts copy into their objects as they are: what is valid
# below them is the Kubernetes schema's business (the rendered objects are validated).
KUBERNETES_STRUCTS = frozenset({
    "resources", "securityContext", "containerSecurityContext", "podSecurityContext",
    "livenessProbe", "readinessProbe", "startupProbe", "affinity", "nodeSelector",
})


def leaf_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every leaf of nested mappings (a list or an empty map is a leaf)."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from leaf_paths(item, (*path, str(key)))
    else:
        yield path


def in_defaults(defaults: Any, path: tuple[str, ...]) -> bool:
    """Whether ``path`` is a key of ``defaults`` (or lies below a free-form one)."""
    for i, key in enumerate(path):
        if not isinstance(defaults, Mapping) or key not in defaults:
            return False
        defaults = defaults[key]
        last = i == len(path) - 1
        if not last and (defaults is None or defaults == {} or key in KUBERNETES_STRUCTS):
            return True  # a free-form map
    return True


def known(tree: ChartTree, path: tuple[str, ...]) -> bool:
    """Whether the chart (or the subchart below the first key) has this value."""
    if in_defaults(tree.values, path):
        return True
    if not path:
        return False
    head, rest = path[0], path[1:]
    if head == "global":  # globals reach every subchart
        return any(known(sub, path) for sub in tree.subcharts.values())
    sub = tree.subcharts.get(head)
    return sub is not None and bool(rest) and known(sub, rest)


def passed_through(chart: str, dotted: str) -> bool:
    return any(c == chart and (dotted == key or dotted.startswith(f"{key}."))
               for c, key in PASS_THROUGH)


def unknown_keys(release: Release, tree: ChartTree) -> list[str]:
    """One line per key of ``release``'s values that the chart does not know."""
    out = []
    for path in leaf_paths(release.values):
        dotted = ".".join(path)
        if not path or known(tree, path) or passed_through(release.chart, dotted):
            continue
        out.append(f"{release.values_source}: {dotted}: not a value of chart {tree.label}"
                   " (a typo is a silent no-op)")
    return out
