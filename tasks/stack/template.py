"""Templating for manifests/ and helm-values/: ``${name}`` placeholders, YAML-safe.

A placeholder that is a whole YAML value (``key: ${k3s.pod_cidr}`` or
``- ${operators}``) is replaced by the value as JSON, which YAML reads back exactly, so
a string such as ``yes`` or ``010`` stays a string and lists/mappings work. A
placeholder inside a longer string (``host: api.${domain}``) is replaced by the plain
text of the value, which must then be a string or number. Names are dotted paths into
the context (see :mod:`tasks.stack.context`). An unknown name is an error naming the
file and line; ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tasks.engine.errors import UserError

_PLACEHOLDER = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
_WHOLE = re.compile(r"^(?P<lead>\s*(?:-\s+)*(?:[^#'\"\s][^:#]*:\s+|-\s+)?)"
                    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\}(?P<trail>\s*(?:#.*)?)$")


class TemplateError(UserError):
    """A template refers to an unknown value or embeds a value it cannot."""


def lookup(context: Mapping[str, Any], name: str) -> Any:
    value: Any = context
    for part in name.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            raise KeyError(name)
    return value


def render(text: str, context: Mapping[str, Any], source: str = "<template>") -> str:
    """Substitute every placeholder in ``text``; errors name ``source`` and the line."""
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        try:
            whole = _WHOLE.match(body)
            if whole:
                value = lookup(context, whole["name"])
                body = whole["lead"] + json.dumps(value) + whole["trail"]
            else:
                body = _PLACEHOLDER.sub(lambda m: _inline(context, m[1]), body)
        except KeyError as exc:
            raise TemplateError(f"{source}:{number}: unknown value ${{{exc.args[0]}}}"
                                " (see tasks/stack/context.py for the names)") from None
        except TypeError as exc:
            raise TemplateError(f"{source}:{number}: {exc}") from None
        out.append(body.replace("$${", "${") + newline)
    return "".join(out)


def _inline(context: Mapping[str, Any], name: str) -> str:
    value = lookup(context, name)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"${{{name}}} is a {type(value).__name__}: use it as a whole value")
    return str(value)
