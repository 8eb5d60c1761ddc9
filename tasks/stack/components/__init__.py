"""The stack's components in apply order (the order the deploy tasks follow).

Each module exposes ``NAME``, ``render(ctx) -> Bundle`` and optionally
``checks(bundle, ctx) -> list[str]``; see tasks/stack/render.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from tasks.stack.components import (
    apps,
    cert_manager,
    flux,
    k3s,
    kafka,
    monitoring,
    traefik,
)
from tasks.stack.render import Bundle

#: Apply order.
MODULES: list[ModuleType] = [k3s, traefik, cert_manager, flux, monitoring, kafka, apps]


def modules() -> list[ModuleType]:
    return list(MODULES)


def render_all(ctx: Mapping[str, Any]) -> dict[str, Bundle]:
    """Every component's bundle, keyed by component name, in apply order."""
    out: dict[str, Bundle] = {}
    for module in MODULES:
        render: Callable[[Mapping[str, Any]], Bundle] = module.render
        out[module.NAME] = render(ctx)
    return out
