"""Applications (STACK.md section 9): our chart ``charts/apps`` and the ``app`` namespace.

The chart's values are ``helm-values/apps.yaml`` rendered from the inventory; the chart
is rendered with the real ``helm template`` (tasks/stack/helm.py), so what is validated
is what gets applied. :func:`values` is also what ``inv validate`` lints the chart with
(``helm lint --strict``), and :func:`release` is what ``apps.deploy`` installs: the same
values, so what is validated is what is deployed. :func:`checks` holds the rules that tie
the rendered objects to each other and to the inventory; the generic workload policy
(pinned images, limits, probes, security context) belongs to ``inv validate``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT
from tasks.stack import helm
from tasks.stack.components import apps_rules
from tasks.stack.render import Bundle, Release, manifest_documents, values_file
from tasks.stack.workloads import APP_KEYS

NAME = "apps"

CHART = REPO_ROOT / "charts" / "apps"
RELEASE = "apps"


def require_images(ctx: Mapping[str, Any]) -> None:
    """Every app needs a pinned image in the inventory: there is no default."""
    missing = [key for key in APP_KEYS if not ctx["apps"][key]["image"]]
    if missing:
        lines = [f"inventory.yaml: apps.{key}.image: required: the image to run, with a"
                 " pinned tag or digest (e.g. ghcr.io/team-mercurious/"
                 f"{key.replace('_', '-')}:1.0.0)" for key in missing]
        raise UserError(lines[0], lines=lines)


def values(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The chart's values for this inventory (``helm-values/apps.yaml`` rendered).

    Plain data: the file's YAML anchors (the workers' probes) become copies, so a caller
    changing one app's values changes no other."""
    require_images(ctx)
    data: dict[str, Any] = json.loads(json.dumps(values_file("apps", ctx)[1]))
    return data


def chart_version() -> str:
    """``version`` of charts/apps/Chart.yaml: with the chart's name, what ``helm list``
    reports for the release (``apps-0.1.0``, helm's formatChartname)."""
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text()) or {}
    return str(meta["version"])


def release(ctx: Mapping[str, Any]) -> Release:
    """Our chart as ``apps.deploy`` installs it: from the chart directory, with
    :func:`values` (the very values ``inv validate`` renders and lints)."""
    return Release(name=RELEASE, namespace=ctx["apps"]["namespace"], repo_name="",
                   repo_url="", chart="apps", version=chart_version(),
                   values_source="helm-values/apps.yaml", values=values(ctx))


def certificates(chart_values: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(Certificate name, hosts) cert-manager makes for the chart's Ingresses: its
    ingress-shim names each Certificate after the Ingress's ``tls[].secretName``
    (cert-manager.io/docs/usage/ingress, "How it works"); our chart writes that from
    ``ingress.tlsSecret`` (charts/apps/templates/ingress.yaml)."""
    out = []
    for app in (chart_values.get("apps") or {}).values():
        ingress = app.get("ingress") or {}
        if ingress.get("enabled") and ingress.get("tlsSecret"):
            out.append((str(ingress["tlsSecret"]), [str(ingress["host"])]))
    return out


def secret_names(chart_values: Mapping[str, Any]) -> list[str]:
    """The Secrets the chart's pods read (pull secrets, the Kafka password, secretEnv), in
    the order they first appear."""
    names = list(chart_values.get("imagePullSecrets") or [])
    names.append(((chart_values.get("kafka") or {}).get("passwordSecret") or {}).get("name"))
    for app in (chart_values.get("apps") or {}).values():
        names += [ref.get("secret") for ref in (app.get("secretEnv") or {}).values()]
    return [str(n) for n in dict.fromkeys(names) if n]


def render(ctx: Mapping[str, Any]) -> Bundle:
    docs = manifest_documents("apps", ctx)
    rel = release(ctx)
    docs += helm.template(CHART, rel.name, rel.namespace, rel.values)
    return Bundle(documents=docs)


def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """The cross-object rules (tasks/stack/components/apps_rules.py)."""
    return apps_rules.check(bundle.documents, ctx)
