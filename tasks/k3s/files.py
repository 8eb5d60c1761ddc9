"""The K3s files on a node: config (0600), PodSecurity and audit policies, the cluster
token (0600, compared by checksum so it never travels back), our systemd unit, and the
data directory's ``server/logs`` (0700) prepared before K3s starts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, file_fact
from tasks.engine.shell import q, write_file
from tasks.engine.step import Change, Step
from tasks.k3s.node import Node, unit
from tasks.stack.components.k3s import TOKEN_FILE
from tasks.stack.render import HostFile


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sum(raw: Raw) -> str | None:
    word = raw.stdout.split()[:1]
    return word[0] if raw.rc == 0 and word else None


TOKEN_SUM = Fact("k3s:token-sum", f"sha256sum {TOKEN_FILE}", _sum)


def mode_fact(path: str) -> Fact[str | None]:
    return Fact(f"mode:{path}", f"stat -c %a {q(path)}",
                lambda raw: raw.stdout.strip() if raw.rc == 0 else None)


class K3sFiles(Step):
    id = "k3s-files"
    name = "k3s: config, policies, token, unit"

    def __init__(self, node: Node, files: Sequence[HostFile], data_dir: str,
                 token: Callable[[], str]) -> None:
        self.node, self.files, self.token = node, list(files), token
        self.logs = f"{data_dir.rstrip('/')}/server/logs"
        self.unit = unit(node)
        self.contents = {f.path: file_fact(f.path) for f in self.files}
        self.unit_fact = file_fact(node.unit_path)
        self.logs_mode = mode_fact(self.logs)

    def facts(self) -> Sequence[Fact[Any]]:
        modes = [mode_fact(f.path) for f in self.files]
        return [*self.contents.values(), *modes, self.unit_fact, TOKEN_SUM, self.logs_mode]

    def plan(self, facts: Facts) -> list[Change]:
        changes = []
        for f in self.files:
            if facts[self.contents[f.path]] != f.content or facts[mode_fact(f.path)] != "600":
                changes.append(Change(f"write {f.path} (from {f.source})",
                                      f"mkdir -p {q(f.path.rsplit('/', 1)[0])}\n"
                                      + write_file(f.path, f.content, mode=f.mode)))
        token = self.token()
        if facts[TOKEN_SUM] != sha256(token):
            changes.append(Change(f"write the cluster token to {TOKEN_FILE} (0600)",
                                  f"mkdir -p {q(TOKEN_FILE.rsplit('/', 1)[0])}\n"
                                  + write_file(TOKEN_FILE, token, mode="0600")))
        if facts[self.unit_fact] != self.unit:
            changes.append(Change(f"write {self.node.unit_path}",
                                  write_file(self.node.unit_path, self.unit)
                                  + "systemctl daemon-reload\n"))
        if self.node.role == "server" and facts[self.logs_mode] != "700":
            changes.append(Change(f"create {self.logs} (0700) before K3s starts",
                                  f"mkdir -p {q(self.logs)} && chmod 0700 {q(self.logs)}\n"))
        return changes
