"""Refusals before anything changes: unsupported OS, or an operator we would shut out."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, Facts
from tasks.engine.step import Change, Step
from tasks.harden.facts import OS_RELEASE


def operator_allowed(address: str, operators: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(c, strict=False) for c in operators)


class Preflight(Step):
    """Fails (so every later step is skipped) when hardening would be unsafe."""

    id = "preflight"
    name = "preflight: supported OS, operator allowed"

    def __init__(self, host: str, client_address: str, operators: Sequence[str]) -> None:
        self.host = host
        self.client_address = client_address
        self.operators = list(operators)

    def facts(self) -> Sequence[Fact[Any]]:
        return [OS_RELEASE]

    def plan(self, facts: Facts) -> list[Change]:
        release = facts[OS_RELEASE]
        if not release.supported:
            raise UserError(f"{self.host} runs {release.pretty}: host.harden supports Debian 12"
                            " and Ubuntu 24.04 only; nothing was changed")
        if not operator_allowed(self.client_address, self.operators):
            raise UserError(
                f"{self.host} sees you as {self.client_address or 'an unknown address'}, which"
                f" is not in operators ({', '.join(self.operators)}): add"
                f" {self.client_address or 'your address'}/32 to operators in the inventory"
                " so the firewall and fail2ban keep you in; nothing was changed")
        return []
