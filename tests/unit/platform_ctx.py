"""Template contexts for the stack tests (every component, gitops, validate).

Inventories are built from dicts with ``tasks.model.fields.build`` (no key file needed);
``variant`` deep-merges changes over the default inventory's data.
"""

from __future__ import annotations

import copy
from typing import Any

from tasks.model.fields import build
from tasks.model.model import Inventory
from tasks.stack.context import context

DEFAULT: dict[str, Any] = {
    "domain": "example.com",
    "acme_email": "ops@example.com",
    "operators": ["203.0.113.10/32"],
    "hosts": [{"name": "vps1", "address": "203.0.113.20", "user": "admin",
               "key_file": "~/.ssh/id_ed25519", "role": "server"}],
    "apps": {
        "api_gateway": {"image": "ghcr.io/team-mercurious/api-gateway:1.0.0", "replicas": 2},
        "api_generation": {"image": "ghcr.io/team-mercurious/api-generation:1.0.0"},
        "api_enrichment": {"image": "ghcr.io/team-mercurious/api-enrichment:1.0.0"},
    },
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def variant(**changes: Any) -> dict[str, Any]:
    """The template context of the default inventory with ``changes`` merged in."""
    inv, errors = build(Inventory, _merge(DEFAULT, changes))
    assert not errors, errors
    return context(inv)


def inventory(**sections: Any) -> dict[str, Any]:
    """The default inventory's data with whole ``sections`` replaced (not merged)."""
    data = copy.deepcopy(DEFAULT)
    data["apps"] = {k: {"image": v["image"]} for k, v in data["apps"].items()}
    data.update(sections)
    return data


def ctx_of(data: dict[str, Any]) -> dict[str, Any]:
    """The template context of inventory ``data`` (which must be valid)."""
    inv, errors = build(Inventory, data)
    assert errors == [], errors
    return context(inv)
