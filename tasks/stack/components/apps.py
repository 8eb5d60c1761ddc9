"""Applications (STACK.md section 9): our chart ``charts/apps`` and the ``app`` namespace.

The chart's values are ``helm-values/apps.yaml`` rendered from the inventory; the chart
is rendered with the real ``helm template`` (tasks/stack/helm.py), so what is validated
is what gets applied. :func:`values` is also what ``inv validate`` lints the chart with
(``helm lint --strict``). :func:`checks` holds the rules that tie the rendered objects
to each other and to the inventory; the generic workload policy (pinned images, limits,
probes, security context) belongs to ``inv validate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT
from tasks.stack import helm
from tasks.stack.components import apps_rules
from tasks.stack.render import Bundle, manifest_documents, values_file
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
    """The chart's values for this inventory (``helm-values/apps.yaml`` rendered)."""
    require_images(ctx)
    return values_file("apps", ctx)[1]


def render(ctx: Mapping[str, Any]) -> Bundle:
    docs = manifest_documents("apps", ctx)
    docs += helm.template(CHART, RELEASE, ctx["apps"]["namespace"], values(ctx))
    return Bundle(documents=docs)


def checks(bundle: Bundle, ctx: Mapping[str, Any]) -> list[str]:
    """The cross-object rules (tasks/stack/components/apps_rules.py)."""
    return apps_rules.check(bundle.documents, ctx)
