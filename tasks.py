"""Entry point of ``inv``: the K3s VPS platform's task collections.

``inv`` imports this file as the module ``tasks``. Giving it the ``tasks/`` folder as
its package path makes ``tasks.<module>`` resolve there, so this file is only the door:
every collection and all logic live in the ``tasks/`` package. Run ``inv --list``.
"""

from pathlib import Path

__path__ = [str(Path(__file__).resolve().with_name("tasks"))]

from tasks.collection import ns

__all__ = ["ns"]
