"""A target that answers fact batches from recorded outputs (for inv status's tests).

``gather`` sends one script per batch; :class:`Replay` finds the fact keys and the
batch's token in it and answers each fact with its recorded :class:`Raw`, in the
framing :func:`tasks.engine.facts.split_output` reads. A fact with no recording fails
the test (KeyError): every read the code makes is one the test recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tasks.cluster.kube import Tools
from tasks.engine.command import Command
from tasks.engine.facts import Raw
from tasks.engine.target import Result

_BEGIN = re.compile(r"'@@stack-fact@@([0-9a-f]+)@@begin@@([^']*)'")


@dataclass
class Replay:
    tools: Tools
    raws: Mapping[str, Raw]
    name: str = "cluster replay"
    round_trips: int = 0
    asked: list[str] = field(default_factory=list)

    def run(self, script: str, *, timeout: float | None = None, on_output: object = None
            ) -> Result:
        self.round_trips += 1
        out = []
        for token, key in _BEGIN.findall(script):
            self.asked.append(key)
            raw = self.raws[key]
            mark = f"@@stack-fact@@{token}"
            out.append(f"{mark}@@begin@@{key}\n{raw.stdout}\n{mark}@@end@@{raw.rc}\n"
                       f"{raw.stderr}\n{mark}@@stderr-end@@\n")
        return Result("".join(out), "", 0)

    def exec(self, command: Command, *, on_output: object = None) -> Result:
        raise AssertionError(f"status ran a command: {command.shown()}")
