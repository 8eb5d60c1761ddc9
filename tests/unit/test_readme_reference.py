"""The README's generated parts stay true: the task reference is what the tasks say, and
every error the troubleshooting section quotes is still printed by the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks import reference
from tasks.collection import ns

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_task_reference_is_current() -> None:
    block = reference.markdown(reference.tasks_of(ns))
    assert reference.current_block(README) == block, (
        "README.md's task reference is stale: run python -m tasks.reference --write")


def test_the_reference_documents_a_task_and_its_options() -> None:
    block = reference.markdown(reference.tasks_of(ns))
    part = block.split("#### `inv host.harden`", 1)[1].split("####", 1)[0]
    assert "| `-c/--check` | plan mode: read the current state and show what would change;" \
           " change nothing |" in part
    assert "| `-i/--inventory VALUE` | inventory file (default: $STACK_INVENTORY, else" \
           " ./inventory.yaml) |" in part


def test_every_task_is_in_the_reference() -> None:
    names = set(re.findall(r"^#### `inv ([a-z0-9_.-]+)`$", reference.current_block(README),
                           re.M))
    assert {"deploy.all", "host.harden", "k3s.install", "ingress.certs", "flux.bootstrap",
            "monitoring.install", "kafka.deploy", "apps.deploy", "validate"} <= names
    assert names == set(ns.task_names)


def test_replace_block_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="no task-reference markers"):
        reference.replace_block("# README\n", "x")
    text = f"a\n{reference.START}\nold\n{reference.END}\nb\n"
    assert reference.replace_block(text, "NEW") == "a\nNEW\nb\n"


def _troubleshooting() -> list[str]:
    section = README.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `([^`]+)`", section, re.M)


def test_troubleshooting_quotes_messages_the_code_prints() -> None:
    quoted = _troubleshooting()
    assert len(quoted) >= 15, quoted
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tasks").rglob("*.py"))
    stale = [q for q in quoted if q not in source]
    assert stale == [], f"README troubleshooting quotes messages no code prints: {stale}"
