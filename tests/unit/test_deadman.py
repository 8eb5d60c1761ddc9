"""The dead-man switch's deadline logic, run for real with sh and flock on this machine.

The host-side scripts take their state directory, lock and restore body as parameters:
here a scratch directory, a scratch lock and a body that only records that it ran. The
timer is played by calling the restore script the way systemd would, every half second.
The real restore on a host is tested end to end on the lab VM (tests/e2e).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tasks.engine.target import LocalTarget, Result
from tasks.harden import deadman

BODY = 'echo restored >>"$S/restored.log"\n'


class Host:
    """A scratch state directory with a backup, a deadline and a run lock."""

    def __init__(self, root: Path) -> None:
        self.state = root / "state"
        (self.state / "backup").mkdir(parents=True)
        self.lock = root / "run.lock"
        self.restore = root / "restore.sh"
        self.restore.write_text(deadman.restore_script(str(self.state), str(self.lock),
                                                       lock_wait=3, body=BODY))

    def deadline_in(self, seconds: int) -> None:
        (self.state / "deadline").write_text(f"{int(time.time()) + seconds}\n")

    def deadline(self) -> int:
        return int((self.state / "deadline").read_text())

    def tick(self) -> None:
        """What the timer does: run the restore script."""
        subprocess.run(["sh", str(self.restore)], check=True, capture_output=True)

    def restored(self) -> int:
        log = self.state / "restored.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def run_locked(self, script: str) -> Result:
        """A run's script as the host runner executes it: under the run lock."""
        locked = f"exec 9>{self.lock}\nflock -w 30 9 || exit 75\n{script}"
        return LocalTarget().run(locked)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def test_before_the_deadline_nothing_is_restored(host: Host) -> None:
    host.deadline_in(60)
    host.tick()
    assert host.restored() == 0 and (host.state / "backup").is_dir()


def test_after_the_deadline_one_restore_and_a_marker_with_its_time(host: Host) -> None:
    host.deadline_in(-1)
    before = int(time.time())
    host.tick()
    host.tick()  # the timer may fire again before it is stopped: nothing more happens
    assert host.restored() == 1
    assert not (host.state / "backup").exists() and not (host.state / "deadline").exists()
    assert before <= int((host.state / "fired").read_text()) <= int(time.time())


def test_wrapped_script_pushes_the_deadline_when_it_starts_and_when_it_ends(host: Host) -> None:
    host.deadline_in(5)
    start = int(time.time())
    script = deadman.wrap_script("echo hello\nexit 3\n", 40, str(host.state))
    result = LocalTarget().run(script)
    assert (result.rc, result.stdout) == (3, "hello\n")  # its own exit code, its output
    assert start + 40 <= host.deadline() <= int(time.time()) + 40


def test_wrapped_script_keeps_its_own_traps(host: Host) -> None:
    host.deadline_in(60)
    inner = "t=$(mktemp)\ntrap 'rm -f \"$t\"; echo cleaned' EXIT\necho work\n"
    result = LocalTarget().run(deadman.wrap_script(inner, 60, str(host.state)))
    assert result.stdout == "work\ncleaned\n" and result.rc == 0


def test_wrapped_script_after_a_rollback_runs_nothing_and_says_when(host: Host) -> None:
    host.deadline_in(-1)
    host.tick()
    fired = (host.state / "fired").read_text().strip()
    result = LocalTarget().run(deadman.wrap_script("echo must-not-run\n", 60, str(host.state)))
    assert result.rc == deadman.ROLLED_BACK_RC and "must-not-run" not in result.stdout
    assert f"{deadman.FIRED_MARK} {fired}" in result.stderr
    switch = deadman.DeadmanSwitch.__new__(deadman.DeadmanSwitch)
    assert switch.rolled_back(result) == time.strftime("%H:%M:%S",
                                                       time.localtime(int(fired)))
    assert switch.rolled_back(Result("", "other failure", 76)) is None


def test_a_script_slower_than_the_deadline_is_never_cut(host: Host) -> None:
    """The host is slower than the deadline: one script takes 3 s with a 1 s deadline.
    The timer fires meanwhile; the restore waits for the run lock, sees the deadline the
    script pushed when it ended, and restores nothing."""
    host.deadline_in(1)
    stop = threading.Event()

    def timer() -> None:
        while not stop.wait(0.3):
            host.tick()

    ticking = threading.Thread(target=timer)
    ticking.start()
    try:
        slow = deadman.wrap_script("sleep 3\necho done\n", 1, str(host.state))
        first = host.run_locked(slow)
        second = host.run_locked(deadman.wrap_script("echo next\n", 1, str(host.state)))
    finally:
        stop.set()
        ticking.join()
    assert first.stdout == "done\n" and second.stdout == "next\n"
    assert host.restored() == 0
    # Then the run stops making progress: the deadline passes and the host restores.
    time.sleep(1.2)
    host.tick()
    assert host.restored() == 1


def test_a_stuck_run_cannot_delay_the_restore_for_ever(host: Host) -> None:
    host.deadline_in(-1)
    holder = subprocess.Popen(["flock", str(host.lock), "sleep", "8"])
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        host.tick()  # lock_wait is 3 s here (RESTORE_LOCK_WAIT on hosts)
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert host.restored() == 1
    assert 2.5 <= waited < 8


def test_disarmed_while_the_restore_waited_restores_nothing(host: Host) -> None:
    host.deadline_in(-1)
    holder = subprocess.Popen(["flock", str(host.lock), "sh", "-c",
                               f"sleep 1; rm -rf {host.state}/backup"])
    try:
        time.sleep(0.3)
        host.tick()
    finally:
        holder.wait()
    assert host.restored() == 0


def test_arm_script_polls_the_deadline_and_backs_up_once() -> None:
    text = deadman.arm_script(300)
    assert "--on-active=10s --on-unit-active=10s" in text
    assert "echo $(( $(date +%s) + 300 )) >/var/lib/stack-deadman/deadline" in text
    assert "if [ ! -d /var/lib/stack-deadman/backup ]; then" in text
    assert "cp -a /etc/ssh /var/lib/stack-deadman/backup.tmp/ssh" in text
    assert "--on-active=10s" in deadman.arm_script(30)  # 30 s: checked every 10 s
    assert "--on-active=1s" in deadman.arm_script(3)


def test_state_lines_parse() -> None:
    assert deadman.parse_state("fired 1700000000\n") == ("fired", 1700000000.0)
    assert deadman.parse_state("armed 1700000300\n") == ("armed", 1700000300.0)
    assert deadman.parse_state("disarmed\n") == ("disarmed", None)
    assert deadman.parse_state("garbage") == ("unknown", None)


@pytest.mark.parametrize(("files", "expected"), [
    ({"deadline": "1700000300"}, "armed 1700000300"),
    ({"fired": "1700000000"}, "fired 1700000000"),
    ({}, "disarmed"),
])
def test_state_script_on_a_scratch_state_dir(tmp_path: Path, files: dict[str, str],
                                             expected: str) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(content + "\n")
    script = deadman.STATE_SCRIPT.replace(deadman.STATE_DIR, str(tmp_path))
    assert LocalTarget().run(script).stdout.strip() == expected
