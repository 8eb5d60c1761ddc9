"""Values for the templates' placeholders: generated ones and the operator's inputs.

``<generate: N random bytes, base64|base64url|hex>`` is made here with the ``secrets``
module (at least 16 bytes; base64url without padding, like ``secrets.token_urlsafe``).
``<input: what>`` is asked for with a no-echo prompt, or, where there is no terminal
(CI), read from ``$STACK_SECRET_<SECRET>__<KEY>``: every ``STACK_SECRET_*`` variable is
taken out of this process's environment when a task starts, so no child process
(sops, git, an editor) inherits one. Messages about a value never quote it.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from tasks.engine.errors import UserError
from tasks.secrets.binaries import INPUT_ENV_PREFIX

MIN_BYTES = 16
_RANDOM = re.compile(r"^(\d+) random bytes, (base64url|base64|hex)$")
_PLACEHOLDER = re.compile(r"^<(generate|input|value): ([^<>]+)>$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENCODE: dict[str, Callable[[int], str]] = {
    "hex": secrets.token_hex,
    "base64url": secrets.token_urlsafe,
    "base64": lambda n: base64.b64encode(secrets.token_bytes(n)).decode(),
}


def placeholder(value: str) -> tuple[str, str]:
    """``("generate", "24 random bytes, base64url")`` for ``<generate: 24 random ...>``."""
    match = _PLACEHOLDER.match(value)
    if not match:
        raise ValueError(f"not a placeholder: {value!r}")
    return match.group(1), match.group(2)


def generator_problem(description: str) -> str | None:
    """Why ``<generate: description>`` cannot be generated here (None when it can)."""
    match = _RANDOM.match(description)
    if not match:
        return (f"<generate: {description}>: unknown generator (here: '<N> random bytes,"
                " base64|base64url|hex')")
    if int(match.group(1)) < MIN_BYTES:
        return f"<generate: {description}>: at least {MIN_BYTES} random bytes"
    return None


def generate(description: str) -> str:
    problem = generator_problem(description)
    if problem:
        raise UserError(problem)
    match = _RANDOM.match(description)
    assert match
    return _ENCODE[match.group(2)](int(match.group(1)))


def env_name(secret: str, key: str) -> str:
    """``STACK_SECRET_APP_CONFIG__MONGODB_URI`` for Secret app-config, key MONGODB_URI."""
    def part(text: str) -> str:
        return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")
    return f"{INPUT_ENV_PREFIX}{part(secret)}__{part(key)}"


def _prefixes(*prefixes: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value.startswith(prefixes):
            return None
        return f"expected a URL starting with {' or '.join(prefixes)}"
    return check


def _docker_config(value: str) -> str | None:
    try:
        data = json.loads(value)
    except ValueError:
        return "expected docker config JSON ({\"auths\": {\"ghcr.io\": {...}}})"
    if not isinstance(data, dict) or not isinstance(data.get("auths"), dict):
        return "expected docker config JSON with an \"auths\" object"
    return None


# Checks of the operator's inputs, by key; every input must also be one line, not empty.
CHECKS: dict[str, Callable[[str], str | None]] = {
    "MONGODB_URI": _prefixes("mongodb://", "mongodb+srv://"),
    "REDIS_URL": _prefixes("redis://", "rediss://"),
    ".dockerconfigjson": _docker_config,
}


def input_problem(key: str, value: str) -> str | None:
    if not value.strip():
        return "empty"
    if _CONTROL.search(value):
        return "contains a control character (a newline?)"
    check = CHECKS.get(key)
    return check(value) if check else None


@dataclass(frozen=True)
class Wanted:
    """One value only the operator knows."""

    source: str    # the template, e.g. secrets/secret-app.template.yaml
    secret: str    # namespace/name
    key: str
    what: str      # the placeholder's description

    @property
    def env(self) -> str:
        return env_name(self.secret.split("/")[-1], self.key)

    @property
    def label(self) -> str:
        return f"{self.secret} {self.key}"


def take_inputs_from_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Remove every ``STACK_SECRET_*`` variable from the environment; return them."""
    env = os.environ if environ is None else environ
    names = [k for k in env if k.startswith(INPUT_ENV_PREFIX)]
    return {k: env.pop(k) for k in names}


@dataclass
class Inputs:
    """Where the operator's values come from: variables taken at start, else a prompt."""

    given: dict[str, str] = field(default_factory=dict)
    interactive: bool | None = None
    prompt: Callable[[str], str] = getpass.getpass
    tries: int = 3

    def can_prompt(self) -> bool:
        if self.interactive is not None:
            return self.interactive
        return sys.stdin.isatty()

    def missing(self, wanted: list[Wanted]) -> list[str]:
        """One line per value that can be neither taken nor asked for (no terminal)."""
        if self.can_prompt():
            return []
        return [f"{w.source}: {w.label} ({w.what}): no terminal to ask on: set {w.env}"
                for w in wanted if w.env not in self.given]

    def get(self, w: Wanted) -> str:
        if w.env in self.given:
            value = self.given[w.env]
            problem = input_problem(w.key, value)
            if problem:
                raise UserError(f"{w.env}: {problem} (for {w.label})")
            return value
        for _ in range(self.tries):
            value = self.prompt(f"{w.label} ({w.what}; not echoed): ")
            problem = input_problem(w.key, value)
            if not problem:
                return value
            print(f"{w.label}: {problem}; again", file=sys.stderr)
        raise UserError(f"{w.label}: no valid value after {self.tries} tries; nothing written")

