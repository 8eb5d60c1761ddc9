"""Shared test configuration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasks.collection import ns

# The `standins` fixture: stand-in kubectl and helm with a fresh stand-in cluster
# (tests/standins/harness.py).
pytest_plugins = ["tests.standins.harness"]

# invoke pops each option's help out of Task.help when it parses a command line, so a
# test that runs a task in-process would leave the tasks without their help for the tests
# after it (the task reference, the options checks). Kept as imported, put back after
# every test.
_TASK_HELP = {name: dict(ns[name].help) for name in ns.task_names}


@pytest.fixture(autouse=True)
def _task_help_put_back() -> Iterator[None]:
    yield
    for name, help_ in _TASK_HELP.items():
        ns[name].help = dict(help_)
