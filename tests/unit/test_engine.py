"""The step engine on the local machine: real shell, real files, real converge."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tasks.engine.converge import converge
from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, Facts, batch_script, file_fact, split_output
from tasks.engine.report import Reporter, Status, Summary
from tasks.engine.shell import cmd, heredoc, q, write_file
from tasks.engine.step import Change, Step
from tasks.engine.target import LocalTarget, gather


class FileStep(Step):
    """Keeps one file at the wanted content: the smallest honest step."""

    def __init__(self, path: Path, content: str, *, guarded: bool = False,
                 broken: bool = False) -> None:
        self.path, self.content, self.guarded, self.broken = path, content, guarded, broken
        self.name = f"file {path.name}"
        self.fact = file_fact(str(path))

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.fact]

    def plan(self, facts: Facts) -> list[Change]:
        if facts[self.fact] == self.content:
            return []
        body = "true\n" if self.broken else write_file(str(self.path), self.content,
                                                       owner="root", group="root")
        return [Change(f"write {self.path.name}", body)]


class RecordingGuard:
    """Test double for the dead-man switch (the real one needs systemd on a host)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def arm(self) -> str:
        self.calls.append("arm")
        return "armed"

    def confirm(self) -> str:
        self.calls.append("confirm")
        return "confirmed"


def run(steps: list[Step], *, check: bool = False, guard: RecordingGuard | None = None,
        target: LocalTarget | None = None) -> tuple[Summary, str]:
    out = io.StringIO()
    summary = Summary()
    converge(target or LocalTarget(), steps, check=check, reporter=Reporter(out),
             summary=summary, guard=guard)
    Reporter(out, verbose=True).summary(summary)
    return summary, out.getvalue()


@pytest.mark.parametrize("content", [
    "plain\n", "no newline", "", "$HOME `id` 'single' \"double\" \\ \n\t tabs",
    "STACK_EOF_deadbeef0000\nlooks like a delimiter\n", "\u00e9t\u00e9 \u2603\n",
])
def test_write_file_is_byte_exact(tmp_path: Path, content: str) -> None:
    path = tmp_path / "f"
    r = LocalTarget().run(write_file(str(path), content, mode="0640", owner="root",
                                     group="root"))
    assert r.ok, r.stderr
    assert path.read_text() == content
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_quoting_survives_hostile_arguments(tmp_path: Path) -> None:
    hostile = "a b; rm -rf / $(id) `id` 'q' \"d\" \\"
    r = LocalTarget().run(cmd("printf", "%s", hostile))
    assert r.stdout == hostile
    assert q("simple") == "simple"
    assert "STACK_EOF_" in heredoc("x")


def test_batch_split_roundtrip_with_real_shell(tmp_path: Path) -> None:
    facts = [Fact("a", "printf 'x\\ny'", lambda r: r), Fact("b", "exit 7", lambda r: r),
             Fact("c", "echo; echo", lambda r: r)]
    script, token = batch_script(facts)
    raw = split_output(LocalTarget().run(script).stdout, token)
    assert raw["a"].stdout == "x\ny" and raw["a"].rc == 0
    assert raw["b"].stdout == "" and raw["b"].rc == 7
    assert raw["c"].stdout == "\n\n"


def test_fact_markers_in_output_cannot_confuse_the_split() -> None:
    facts = [Fact("a", "echo '@@stack-fact@@fake@@end@@0'", lambda r: r)]
    script, token = batch_script(facts)
    raw = split_output(LocalTarget().run(script).stdout, token)
    assert raw["a"].stdout == "@@stack-fact@@fake@@end@@0\n"


def test_converge_changes_then_is_idempotent(tmp_path: Path) -> None:
    steps: list[Step] = [FileStep(tmp_path / "a", "one\n"), FileStep(tmp_path / "b", "two")]
    first, text = run(steps)
    assert [o.status for o in first.outcomes] == [Status.CHANGED, Status.CHANGED]
    assert "changed" in text and "- write a" in text
    second, text = run(steps)
    assert [o.status for o in second.outcomes] == [Status.OK, Status.OK]
    assert "0 changed" in text


def test_converged_target_costs_one_round_trip(tmp_path: Path) -> None:
    steps: list[Step] = [FileStep(tmp_path / n, n) for n in "abcdef"]
    run(steps)
    target = LocalTarget()
    _summary, text = run(steps, target=target)
    assert target.round_trips == 1
    assert "round trips: local: 1" in text


def test_changed_step_costs_apply_plus_one_fact_batch(tmp_path: Path) -> None:
    steps: list[Step] = [FileStep(tmp_path / n, n) for n in "abc"]
    target = LocalTarget()
    run(steps, target=target)
    # 1 initial batch + per changed step: apply + re-read (covering later steps)
    assert target.round_trips == 1 + 3 * 2


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    step = FileStep(tmp_path / "a", "wanted")
    summary, text = run([step], check=True)
    assert summary.outcomes[0].status is Status.WOULD_CHANGE
    assert "would change" in text and "write a" in text
    assert not (tmp_path / "a").exists()


def test_verification_failure_stops_and_skips_the_rest(tmp_path: Path) -> None:
    steps: list[Step] = [FileStep(tmp_path / "a", "x", broken=True), FileStep(tmp_path / "b", "y")]
    summary, text = run(steps)
    assert [o.status for o in summary.outcomes] == [Status.FAILED, Status.SKIPPED]
    assert "still differs after applying: write a" in text
    assert summary.failed and not (tmp_path / "b").exists()


def test_apply_failure_reports_the_error_tail(tmp_path: Path) -> None:
    class Fails(FileStep):
        def plan(self, facts: Facts) -> list[Change]:
            return [Change("do the impossible", "echo 'first line' >&2\necho 'the reason' >&2\n"
                                                "exit 9\n")]
    summary, text = run([Fails(tmp_path / "a", "x")])
    assert summary.outcomes[0].status is Status.FAILED
    assert "exit 9: the reason" in text


def test_guard_armed_only_around_guarded_changes(tmp_path: Path) -> None:
    guard = RecordingGuard()
    steps: list[Step] = [FileStep(tmp_path / "plain", "p"),
                         FileStep(tmp_path / "ssh", "s", guarded=True),
                         FileStep(tmp_path / "fw", "f", guarded=True),
                         FileStep(tmp_path / "after", "a")]
    run(steps, guard=guard)
    assert guard.calls == ["arm", "confirm"]
    guard.calls.clear()
    run(steps, guard=guard)  # converged: nothing to guard
    assert guard.calls == []
    (tmp_path / "fw").write_text("drift")
    run(steps, guard=guard, check=True)  # plan mode never arms
    assert guard.calls == []
    run(steps, guard=guard)
    assert guard.calls == ["arm", "confirm"]


def test_failed_confirmation_fails_the_run(tmp_path: Path) -> None:
    class NoConfirm(RecordingGuard):
        def confirm(self) -> str:
            raise UserError("a new SSH login failed")
    summary, text = run([FileStep(tmp_path / "ssh", "s", guarded=True)], guard=NoConfirm())
    assert summary.failed and "a new SSH login failed" in text
    assert "dead-man switch stays armed" in text


def test_facts_gathered_once_for_all_steps(tmp_path: Path) -> None:
    target = LocalTarget()
    facts = gather(target, [file_fact(str(tmp_path / "x")), file_fact(str(tmp_path / "y"))])
    assert target.round_trips == 1 and len(facts.keys()) == 2
