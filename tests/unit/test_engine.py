"""The step engine on the local machine: real shell, real files, real converge."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tasks.engine.command import Command
from tasks.engine.converge import converge
from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, FactError, Facts, batch_script, file_fact, split_output
from tasks.engine.report import Reporter, Status, Summary
from tasks.engine.shell import cmd, heredoc, progress, q, write_file
from tasks.engine.step import Change, Step
from tasks.engine.target import LocalTarget, Result, gather


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
    """Test double for the dead-man switch (the real one needs systemd on a host; its
    host-side scripts are tested in test_deadman.py). ``fire_on`` makes the Nth wrapped
    script report that the target rolled back."""

    def __init__(self, fire_on: set[int] | None = None) -> None:
        self.calls: list[str] = []
        self.wrapped = 0
        self.fire_on = fire_on or set()

    def arm(self) -> str:
        self.calls.append("arm")
        return "armed"

    def wrap(self, script: str) -> str:
        self.wrapped += 1
        self.calls.append("wrap")
        if self.wrapped in self.fire_on:
            return "echo rolled-back >&2; exit 76\n"
        return "echo guarded >&2\n" + script

    def rolled_back(self, result: Result) -> str | None:
        return "12:00:00" if result.rc == 76 and "rolled-back" in result.stderr else None

    def confirm(self) -> str:
        self.calls.append("confirm")
        return "confirmed"

    def state(self) -> str:
        return "dead-man switch armed: rolls back at 12:05:00"


def run(steps: list[Step], *, check: bool = False, guard: RecordingGuard | None = None,
        target: LocalTarget | None = None) -> tuple[Summary, str]:
    out = io.StringIO()
    summary = Summary()
    target = target or LocalTarget()
    converge(target, steps, check=check, reporter=Reporter(out), summary=summary, guard=guard)
    summary.add_round_trips(target.name, target.round_trips)
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
    # armed before the first guarded apply; every script until the confirmation is
    # wrapped (apply + re-read for each guarded step), none before or after
    assert guard.calls == ["arm", "wrap", "wrap", "wrap", "wrap", "confirm"]
    guard.calls.clear()
    run(steps, guard=guard)  # converged: nothing to guard
    assert guard.calls == []
    (tmp_path / "fw").write_text("drift")
    run(steps, guard=guard, check=True)  # plan mode never arms
    assert guard.calls == []
    run(steps, guard=guard)
    assert guard.calls == ["arm", "wrap", "wrap", "confirm"]


def test_failed_confirmation_fails_the_run(tmp_path: Path) -> None:
    class NoConfirm(RecordingGuard):
        def confirm(self) -> str:
            raise UserError("a new SSH login failed")
    summary, text = run([FileStep(tmp_path / "ssh", "s", guarded=True)], guard=NoConfirm())
    assert summary.failed and "a new SSH login failed" in text
    # the end note is the guard's own account of its state, not a guess
    assert "dead-man switch armed: rolls back at 12:05:00" in text


def test_a_rollback_mid_run_replans_the_guarded_steps_from_fresh_facts(tmp_path: Path) -> None:
    steps: list[Step] = [FileStep(tmp_path / "plain", "p"),
                         FileStep(tmp_path / "ssh", "s", guarded=True),
                         FileStep(tmp_path / "fw", "f", guarded=True)]
    guard = RecordingGuard(fire_on={3})  # the apply of "fw" finds the host rolled back
    summary, text = run(steps, guard=guard)
    assert not summary.failed, text
    assert "the host rolled back its access settings at 12:00:00 (dead-man switch):" \
           " planning the access steps again from fresh facts" in text
    assert guard.calls.count("arm") == 2 and guard.calls[-1] == "confirm"
    # one outcome per step: the guarded ones from the second attempt
    assert [(o.step, o.status) for o in summary.outcomes] == [
        ("file plain", Status.CHANGED), ("file ssh", Status.OK), ("file fw", Status.CHANGED)]
    assert (tmp_path / "fw").read_text() == "f"


def test_a_host_that_keeps_rolling_back_fails_with_one_line(tmp_path: Path) -> None:
    guard = RecordingGuard(fire_on={1, 2, 3, 4, 5, 6})
    summary, text = run([FileStep(tmp_path / "ssh", "s", guarded=True)], guard=guard)
    assert summary.failed
    assert "it kept rolling back (3 times): check the host's journal" in text


def test_fact_stderr_is_kept_and_a_parser_crash_names_the_fact() -> None:
    def boom(raw: object) -> None:
        raise KeyError("no such field")
    facts = gather(LocalTarget(), [Fact("fails", "echo out; echo why >&2; exit 3", lambda r: r),
                                   Fact("crash", "echo odd output", boom)])
    raw = facts[Fact("fails", "", lambda r: r)]
    assert (raw.stdout, raw.rc, raw.stderr) == ("out\n", 3, "why\n")
    with pytest.raises(FactError, match=r"^cannot read fact crash \(exit 0\): 'no such field'$"):
        facts[Fact("crash", "", boom)]


def test_outcomes_carry_the_step_id_not_only_its_name(tmp_path: Path) -> None:
    step = FileStep(tmp_path / "a", "x")
    step.id = "file-a"
    summary, _ = run([step])
    assert summary.status_of("local", "file-a") is Status.CHANGED
    assert summary.status_of("local", "file a") is None


class LeftAloneStep(FileStep):
    """Has nothing to do, and says what it left alone."""

    def plan(self, facts: Facts) -> list[Change]:
        return []

    def notes(self, facts: Facts) -> list[str]:
        return [f"{self.path.name} left alone: {facts[self.fact]!r} is not ours to change"]


def test_a_step_with_nothing_to_change_can_say_what_it_left_alone(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("theirs")
    for check in (False, True):
        summary, text = run([LeftAloneStep(tmp_path / "a", "ours")], check=check)
        assert [(o.status, o.details) for o in summary.outcomes] == [
            (Status.OK, ["a left alone: 'theirs' is not ours to change"])]
        assert "- a left alone: 'theirs' is not ours to change\n" in text
    assert (tmp_path / "a").read_text() == "theirs"


def test_round_trips_add_up_across_layers() -> None:
    summary = Summary()
    summary.add_round_trips("vps1", 2)
    summary.add_round_trips("vps1", 5)
    assert summary.round_trips == {"vps1": 7}


def test_progress_lines_reach_the_callback_not_the_error_text() -> None:
    seen: list[str] = []
    r = LocalTarget().run(progress("unpacking ufw") + "echo real error >&2\necho out\n",
                          on_output=seen.append)
    assert r.stderr == "real error\n" and r.stdout == "out\n"
    assert sorted(seen) == ["out", "real error", "unpacking ufw"]  # two pipes: any order


def test_facts_gathered_once_for_all_steps(tmp_path: Path) -> None:
    target = LocalTarget()
    facts = gather(target, [file_fact(str(tmp_path / "x")), file_fact(str(tmp_path / "y"))])
    assert target.round_trips == 1 and len(facts.keys()) == 2


class SlowStep(FileStep):
    """Applies with a progress line, then works for a while."""

    def plan(self, facts: Facts) -> list[Change]:
        changes = super().plan(facts)
        return [Change(c.summary, progress("unpacking ufw (0.36.2-1)") + "sleep 1.2\n"
                       + c.script) for c in changes]


def test_a_long_step_shows_plain_progress_lines_when_not_on_a_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.engine import report

    monkeypatch.setattr(report, "QUIET_FOR", 0.1)
    monkeypatch.setattr(report, "PLAIN_EVERY", 0.5)
    out = io.StringIO()
    converge(LocalTarget(), [SlowStep(tmp_path / "a", "x")], check=False,
             reporter=Reporter(out), summary=Summary())
    lines = out.getvalue().splitlines()
    progress_lines = [line for line in lines if " running " in line]
    assert progress_lines, lines
    assert progress_lines[0].startswith("local      running      file a (")
    assert any(line.endswith(": unpacking ufw (0.36.2-1)") for line in progress_lines)
    assert "\r" not in out.getvalue()  # plain lines only
    assert lines[-2:] == [lines[-2], f"{'':<23} - write a"]  # the final lines stay
    assert lines[-2].startswith("local      changed      file a")


def test_a_long_step_redraws_one_live_line_on_a_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.engine import report

    monkeypatch.setattr(report, "QUIET_FOR", 0.1)
    monkeypatch.setattr(report, "LIVE_EVERY", 0.2)
    out = io.StringIO()
    converge(LocalTarget(), [SlowStep(tmp_path / "a", "x")], check=False,
             reporter=Reporter(out, live=True), summary=Summary())
    text = out.getvalue()
    assert text.count("\r\033[K") >= 3  # redrawn in place
    assert "running      file a (1s): unpacking ufw (0.36.2-1)" in text
    # the live line is erased before the step's own line is printed
    assert text.endswith("\r\033[K" + text.rsplit("\r\033[K", 1)[1])
    assert text.rsplit("\r\033[K", 1)[1].startswith("local      changed      file a")


def test_host_output_is_shown_escaped() -> None:
    from tasks.engine.report import Activity

    activity = Activity("vps1", "packages")
    activity.saw("Setting up \x1b[31mufw\x1b[0m\x07 now")
    assert activity.doing == "Setting up \\x1b[31mufw\\x1b[0m\\x07 now"


# Commands: argv + stdin, no shell -----------------------------------------------------

def test_command_runs_without_a_shell_and_feeds_stdin() -> None:
    hostile = "a b; $(id) `id` 'q'"
    r = LocalTarget().exec(Command(("printf", "%s|", hostile)))
    assert (r.rc, r.stdout) == (0, f"{hostile}|")
    big = b"x" * 300_000 + b"\nend\n"  # larger than a pipe buffer: fed while read
    r = LocalTarget().exec(Command(("tail", "-c", "4"), stdin=big))
    assert r.stdout == "end\n"


def test_command_timeout_and_missing_binary() -> None:
    r = LocalTarget().exec(Command(("sleep", "5"), timeout=0.5))
    assert (r.rc, r.stderr) == (124, "timed out after 0s")
    r = LocalTarget().exec(Command(("/nonexistent/kubectl", "version")))
    assert r.rc == 127 and r.stderr.startswith("cannot run /nonexistent/kubectl:")


def test_command_shown_never_includes_stdin() -> None:
    c = Command(("kubectl", "apply", "--server-side", "-f", "-"), stdin=b"password: hunter2",
                stdin_label="Secret grafana-admin")
    assert c.shown() == "kubectl apply --server-side -f - <Secret grafana-admin"
    assert "hunter2" not in c.shown()


class CommandStep(Step):
    """Keeps a file at the wanted content through an argv command (tee), like kubectl."""

    id = name = "command step"

    def __init__(self, path: Path, content: str, ok_codes: tuple[int, ...] = (0,)) -> None:
        self.path, self.content, self.ok_codes = path, content, ok_codes
        self.fact = file_fact(str(path))

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.fact]

    def plan(self, facts: Facts) -> list[Change]:
        if facts[self.fact] == self.content:
            return []
        return [Change("write it", commands=(
            Command(("tee", str(self.path)), stdin=self.content.encode(),
                    ok_codes=self.ok_codes),))]


def test_converge_applies_command_changes_and_is_idempotent(tmp_path: Path) -> None:
    target = LocalTarget()
    summary, _ = run([CommandStep(tmp_path / "f", "from stdin\n")], target=target)
    assert [o.status for o in summary.outcomes] == [Status.CHANGED]
    assert (tmp_path / "f").read_text() == "from stdin\n"
    assert target.round_trips == 3  # facts, the command, facts again
    again, _ = run([CommandStep(tmp_path / "f", "from stdin\n")])
    assert [o.status for o in again.outcomes] == [Status.OK]


def test_a_failing_command_fails_the_step_with_its_error(tmp_path: Path) -> None:
    step = CommandStep(tmp_path / "missing-dir" / "f", "x")
    summary, text = run([step])
    assert summary.failed
    assert "command step: write it: exit 1: tee:" in text


def test_local_children_inherit_neither_the_sudo_password_nor_secret_inputs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_SECRET_APP_CONFIG__MONGODB_URI", "canary-env-41d2")
    monkeypatch.setenv("STACK_SUDO_PASSWORD", "canary-sudo-77ab")
    monkeypatch.setenv("STACK_SECRETS_NOTE", "kept")  # not an input: no trailing underscore
    result = LocalTarget(env={"EXTRA": "given"}).run("env")
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert "canary" not in result.stdout
    assert (seen.get("EXTRA"), seen.get("STACK_SECRETS_NOTE")) == ("given", "kept")
