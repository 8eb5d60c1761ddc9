"""The CLIs the tasks run (helm, kubectl, sops, age): pinned, checksummed, found one way.

``tool_path("kubectl")`` is how every task gets a tool; ``inv tools.install`` puts the
pinned versions into ``.cache/tools/`` (see :mod:`tasks.tooling.install`).
"""

from tasks.tooling.lookup import tool_path

__all__ = ["tool_path"]
