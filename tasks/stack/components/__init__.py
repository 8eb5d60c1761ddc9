"""The stack's components in apply order (the order ``inv deploy.all`` follows).

Each module exposes ``NAME`` and ``render(ctx) -> Bundle``; see tasks/stack/render.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from tasks.stack.render import Bundle

# Filled as components land: (name, module). Order = apply order.
_ORDER: list[str] = [
    "k3s", "traefik", "cert_manager", "flux", "monitoring", "kafka", "apps",
]


def modules() -> list[ModuleType]:
    import importlib

    found = []
    for name in _ORDER:
        try:
            found.append(importlib.import_module(f"tasks.stack.components.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"tasks.stack.components.{name}":
                raise
    return found


def render_all(ctx: Mapping[str, Any]) -> dict[str, Bundle]:
    """Every component's bundle, keyed by component name, in apply order."""
    out: dict[str, Bundle] = {}
    for module in modules():
        render: Callable[[Mapping[str, Any]], Bundle] = module.render
        out[module.NAME] = render(ctx)
    return out
