"""Host-layer plans pinned as data: facts in, as the host prints them; commands out.

Every ``tests/unit/fixtures/host/<step id>/<case>.yaml`` is one case of that step; the
cases under ``all/`` plan every step. A case has, in this order:

``inventory``
    An inventory snippet laid over ``fixtures/host/inventory.yaml`` (each top-level key
    given replaces the base's). It is loaded and validated like a real inventory and
    :func:`tasks.harden.steps` builds the steps from it, so the wiring from inventory
    to step is pinned too.
``client_address``, ``live_ssh_port``
    The address the host sees the operator at, and the port this session came in on
    (``0``: unknown).
``facts``
    ``<fact key>: {stdout: ..., rc: ...}`` (``stderr`` optional) for exactly the facts
    the step(s) read, as the host prints them: ``sshd -T``, ``sysctl -e``, ``ufw show
    added``, ``fail2ban-client``, ``dpkg-query``, ``systemctl``, ``cat`` of a file.
``changes`` (or ``error``)
    The plan: a list of ``{summary, script}`` (under ``all/``: one list per step id),
    each script in the form :func:`readable` gives it, so every file a step writes is
    literal; or ``error``, the message of the UserError the plan refuses with. A case
    whose changes are all empty is a converged host: ``verify()`` must find nothing.
``verify`` (optional, last)
    What ``verify()`` reports on these same facts: for drifts a plan cannot undo, the
    problems the operator reads.

The command of every fact is pinned once, in ``fixtures/host/fact-commands.yaml``.

Regenerating: ``STACK_UPDATE_HOST_DATA=1 pytest tests/unit/test_host_data.py`` rewrites,
in each case whose expectations differ, everything from its ``changes:``/``error:`` line
on (comments and facts above it stay; ``verify`` only where the case has it), and
``fact-commands.yaml``. That pins whatever the
code does now, right or wrong: review every regenerated file by eye (``git diff``,
against STACK.md) before committing it. Without the variable nothing is ever written.
"""

from __future__ import annotations

import base64
import difflib
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.engine.errors import UserError
from tasks.engine.facts import Facts, Raw
from tasks.engine.shell import write_file
from tasks.engine.step import Step
from tasks.harden import steps as host_steps
from tasks.model.load import load

DATA = Path(__file__).parent / "fixtures" / "host"
BASE_INVENTORY = DATA / "inventory.yaml"
FACT_COMMANDS = DATA / "fact-commands.yaml"
CASES = sorted(DATA.glob("*/*.yaml"))
UPDATE = os.environ.get("STACK_UPDATE_HOST_DATA") == "1"
EXPECTATION_KEYS = ("changes", "error")
VERIFY = "verify"


# Scripts in readable form -------------------------------------------------------------

_HEREDOC = re.compile(r"base64 -d >(?P<path>'[^']*'|\S+) <<'(?P<tag>STACK_EOF_[0-9a-f]+)'\n"
                      r"(?P<body>[A-Za-z0-9+/=\n]*?)(?P=tag)\n")


def readable(script: str) -> str:
    """``script`` with each base64 here-document (:func:`tasks.engine.shell.write_file`)
    shown decoded, under a fixed delimiter::

        write /etc/x.stack-tmp <<EOF
        <the file's content>
        EOF

    A content not ending in a newline gets a ``\\ no newline at end of file`` line."""

    def decode(match: re.Match[str]) -> str:
        content = base64.b64decode(match["body"]).decode()
        assert "\nEOF\n" not in f"\n{content}", "content would end the readable here-doc"
        ending = "" if content.endswith("\n") or not content else (
            "\n\\ no newline at end of file\n")
        return f"write {match['path']} <<EOF\n{content}{ending}EOF\n"

    out = _HEREDOC.sub(decode, script)
    assert "STACK_EOF_" not in out, f"a here-document was not decoded:\n{out}"
    return out


def test_readable_decodes_file_contents_and_drops_the_random_tag() -> None:
    script = write_file("/etc/a b.conf", "x = 1\ny = 2\n", mode="0600")
    assert readable(script) == (
        "write '/etc/a b.conf.stack-tmp' <<EOF\n"
        "x = 1\ny = 2\nEOF\n"
        "chown root:root '/etc/a b.conf.stack-tmp' && chmod 0600 '/etc/a b.conf.stack-tmp'"
        " && mv -f '/etc/a b.conf.stack-tmp' '/etc/a b.conf'\n")
    assert readable(write_file("/f", "no newline")).startswith(
        "write /f.stack-tmp <<EOF\nno newline\n\\ no newline at end of file\nEOF\n")
    assert readable(write_file("/f", "")).startswith("write /f.stack-tmp <<EOF\nEOF\n")


# Loading a case -----------------------------------------------------------------------

def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


def build_steps(case: dict[str, Any], tmp_path: Path) -> list[Step]:
    """The steps ``tasks.harden.steps`` builds from the case's inventory and session."""
    data = {**_load(BASE_INVENTORY), **(case.get("inventory") or {})}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data))
    inv = load(inventory, require_key_files=False).data
    return host_steps(inv, inv.hosts[0], case["client_address"], case["live_ssh_port"])


def case_facts(case: dict[str, Any]) -> Facts:
    raw = {}
    for key, value in case["facts"].items():
        assert set(value) <= {"stdout", "rc", "stderr"} and {"stdout", "rc"} <= set(value), (
            f"fact {key}: give stdout and rc (and optionally stderr), got {sorted(value)}")
        raw[key] = Raw(value["stdout"], value["rc"], value.get("stderr", ""))
    return Facts(raw)


def _change_list(step: Step, facts: Facts) -> list[dict[str, str]]:
    return [{"summary": c.summary, "script": readable(c.script)} for c in step.plan(facts)]


def planned(steps: list[Step], facts: Facts, every_step: bool, *, verify: bool = False
            ) -> dict[str, Any]:
    """The case's expectation section as the code computes it now."""
    try:
        if every_step:
            out: dict[str, Any] = {"changes": {s.id: _change_list(s, facts) for s in steps}}
        else:
            out = {"changes": _change_list(steps[0], facts)}
    except UserError as exc:
        return {"error": str(exc)}
    if verify:
        out[VERIFY] = ({s.id: s.verify(facts) for s in steps} if every_step
                       else steps[0].verify(facts))
    return out


# Output of the expectations: the data files' own form ---------------------------------

class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # sequences indented, as in our YAML


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True)


def _rewrite_expectation(path: Path, section: dict[str, Any]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines)
                 if line.split(":")[0] in EXPECTATION_KEYS and not line.startswith(" "))
    path.write_text("".join(lines[:start]) + dump(section))


def _diff(expected: str, got: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(keepends=True),
                                        got.splitlines(keepends=True),
                                        "in the data file", "planned now", n=4))


# The tests ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(DATA)) for p in CASES])
def test_case(path: Path, tmp_path: Path) -> None:
    case = _load(path)
    name = path.relative_to(DATA.parents[3])
    keys = [k for k in EXPECTATION_KEYS if k in case]
    assert len(keys) == 1, f"{name}: give changes or error (one of them)"
    tail = list(case)[list(case).index(keys[0]):]
    assert tail in ([keys[0]], [keys[0], VERIFY]), (
        f"{name}: {keys[0]} (then optionally verify) must be the last keys, got {tail}")
    every_step = path.parent.name == "all"
    steps = build_steps(case, tmp_path)
    if not every_step:
        steps = [s for s in steps if s.id == path.parent.name]
        assert steps, f"{name}: no step with id {path.parent.name!r}"
    facts = case_facts(case)
    read = {f.key for s in steps for f in s.facts()}
    assert set(case["facts"]) == read, (
        f"{name}: facts missing: {sorted(read - set(case['facts']))};"
        f" facts the steps do not read: {sorted(set(case['facts']) - read)}")

    got = planned(steps, facts, every_step, verify=VERIFY in case)
    expected = {k: case[k] for k in tail}
    if dump(got) != dump(expected):
        if UPDATE:
            _rewrite_expectation(path, got)
            pytest.fail(f"{name}: rewrote its expectations: review them (git diff)",
                        pytrace=False)
        pytest.fail(f"{name}: the plan differs from the data file\n"
                    f"{_diff(dump(expected), dump(got))}\n(STACK_UPDATE_HOST_DATA=1"
                    " rewrites the file's expectations: then review them by eye)",
                    pytrace=False)

    changes = got.get("changes")
    lists = list(changes.values()) if isinstance(changes, dict) else [changes]
    if "changes" in got and not any(lists):
        problems = {s.id: s.verify(facts) for s in steps}
        assert not any(problems.values()), f"{name}: converged, yet verify() finds {problems}"


def test_fact_commands_are_pinned(tmp_path: Path) -> None:
    """Each fact's command as the host runs it: a wrong key list, path or threshold in
    a read-only command shows here, once for all cases."""
    commands: dict[str, str] = {}
    for path in CASES:
        for step in build_steps(_load(path), tmp_path):
            for fact in step.facts():
                assert commands.setdefault(fact.key, fact.command) == fact.command, fact.key
    pinned = dict(sorted(_load(FACT_COMMANDS).items()))
    commands = dict(sorted(commands.items()))
    if dump(pinned) != dump(commands):
        if UPDATE:
            header = "".join(line for line in FACT_COMMANDS.read_text().splitlines(True)
                             if line.startswith("#"))
            FACT_COMMANDS.write_text(header + dump(commands))
            pytest.fail(f"rewrote {FACT_COMMANDS.name}: review it (git diff)", pytrace=False)
        pytest.fail(f"fact commands differ from {FACT_COMMANDS.name}\n"
                    + _diff(dump(pinned), dump(commands)), pytrace=False)
