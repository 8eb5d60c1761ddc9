"""Steps: check, then act, then verify.

A step names the facts it reads, *plans* the changes those facts call for (a pure
function, tested table-driven: facts in, changes out) and, after its changes ran on the
target, verifies from freshly read facts that nothing is left to change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.engine.command import Command
from tasks.engine.facts import Fact, Facts


@dataclass(frozen=True)
class Upload:
    """A local file copied to the target before the change's script runs.

    On a host it lands (mode 0600, as the login user) at ``remote``; the script checks it
    against ``sha256`` and moves it into place as root. ``remote`` is fixed at plan time.
    """

    local: Path
    remote: str
    sha256: str


@dataclass(frozen=True)
class Change:
    """One thing a step will do: a one-line summary and what does it.

    On a host that is shell text (``script``), run as root in one round trip with the
    step's other changes; on this machine (kubectl, helm) it is a list of
    :class:`Command` (argv + stdin), run one by one without a shell.
    """

    summary: str
    script: str = ""
    commands: tuple[Command, ...] = ()
    uploads: tuple[Upload, ...] = ()


class Step(ABC):
    """A unit of convergence. Subclasses set ``id`` and ``name``, implement facts/plan."""

    #: Stable identity (outcomes and hooks find a step by it); ``name`` is for display.
    id: str = "step"
    name: str = "step"
    #: Changes to SSH access or the firewall: run them under the dead-man switch.
    guarded: bool = False

    @abstractmethod
    def facts(self) -> Sequence[Fact[Any]]:
        """Facts :meth:`plan` and :meth:`verify` read."""

    @abstractmethod
    def plan(self, facts: Facts) -> list[Change]:
        """What must change for the target to match; empty when converged. Pure."""

    def verify(self, facts: Facts) -> list[str]:
        """Problems left after applying; by default, whatever would still change."""
        return [f"still differs after applying: {c.summary}" for c in self.plan(facts)]

    def notes(self, facts: Facts) -> list[str]:
        """Lines shown under an ``ok`` step that has nothing to change: what it left
        alone on purpose, and why (a PodMonitor whose CRD is not installed yet)."""
        return []

    def from_repository(self) -> list[str]:
        """What this step would do to a target that has none of it yet, from the
        repository alone: plan mode before the target can be read (the cluster layers
        before K3s is installed). By default: its check, once the target is there."""
        return [f"check: {self.name}"]
