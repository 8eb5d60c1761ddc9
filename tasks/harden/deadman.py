"""The dead-man switch: SSH and firewall changes roll back unless a new login confirms.

Before the first access-related change, the host saves /etc/ssh, the ssh.socket drop-ins,
/etc/ufw, the UFW defaults and the fail2ban jails, writes a *deadline* (host clock,
``seconds`` from now) and starts a transient systemd timer that looks at it every few
seconds. Every script of the run inside the guarded window pushes the deadline forward
when it starts and again when it ends, so the deadline only passes when the run stops
making progress: the operator's machine died, or the connection is gone for good. Once
every access step is done, a *fresh* SSH login disarms it.

When the deadline has passed, the restore takes the host's run lock first, so it never
interleaves with a run's script; a script that still runs holds the lock, and pushes the
deadline when it ends, so a live run is never cut. A run stuck for longer than
:data:`RESTORE_LOCK_WAIT` cannot delay the restore for ever. After restoring it leaves a
marker with its time: the run's next wrapped script sees it, stops before doing anything
and the run plans the access steps again from fresh facts.

A run killed half-way leaves the timer and the first backup in place: a re-run keeps
that backup (the state before any change) and re-arms.
"""

from __future__ import annotations

import os
import re
import time

from tasks.engine.converge import RolledBack
from tasks.engine.errors import ConnectionFailed, UserError
from tasks.engine.shell import q, write_file
from tasks.engine.target import LOCK, Result, SshTarget

STATE_DIR = "/var/lib/stack-deadman"
UNIT = "stack-deadman"
#: Longest a restore waits for a run's script to finish before restoring regardless.
RESTORE_LOCK_WAIT = 600
#: Exit code of a wrapped script that found the host rolled back (it ran nothing).
ROLLED_BACK_RC = 76
FIRED_MARK = "@@stack-deadman-fired@@"
#: Test-only: seconds every wrapped script sleeps first, to make the guarded window
#: slower than the deadline on purpose (the e2e test of a slow host).
TEST_DELAY_ENV = "STACK_TEST_GUARDED_DELAY"

SOCKET_DROP_INS = "/etc/systemd/system/ssh.socket.d"

# Puts the saved settings back. Runs as root from the restore script, with $B the backup.
RESTORE_BODY = f"""\
logger -t {UNIT} "deadline passed without confirmation: restoring SSH, UFW and fail2ban"
if [ -d "$B/ssh" ]; then rm -rf /etc/ssh && cp -a "$B/ssh" /etc/ssh; fi
# auditd's watches on sshd's files went with the folder just replaced: set them again
if command -v augenrules >/dev/null 2>&1; then augenrules --load >/dev/null 2>&1 || true; fi
if [ -d "$B/ssh.socket.d" ]; then
  rm -rf {SOCKET_DROP_INS} && cp -a "$B/ssh.socket.d" {SOCKET_DROP_INS}
fi
systemctl daemon-reload || true  # ssh.socket's generator (Ubuntu) reads sshd_config again
if command -v ufw >/dev/null 2>&1; then
  if [ -d "$B/ufw" ]; then rm -rf /etc/ufw && cp -a "$B/ufw" /etc/ufw; fi
  [ -f "$B/default-ufw" ] && cp -a "$B/default-ufw" /etc/default/ufw
  if [ "$(cat "$B/ufw-state" 2>/dev/null)" = active ]; then ufw --force reload
  else ufw --force disable; fi
fi
if [ -d "$B/jail.d" ]; then rm -rf /etc/fail2ban/jail.d && cp -a "$B/jail.d" /etc/fail2ban/jail.d
elif [ -d /etc/fail2ban/jail.d ]; then rm -f /etc/fail2ban/jail.d/00-stack-*; fi
if command -v fail2ban-client >/dev/null 2>&1; then
  fail2ban-client unban --all >/dev/null 2>&1 || true
  systemctl try-restart fail2ban.service || true
fi
if systemctl is-active --quiet ssh.socket; then systemctl restart ssh.socket || true; fi
sshd -t && {{ systemctl reload ssh || systemctl restart ssh; }}
"""


def restore_script(state_dir: str = STATE_DIR, lock: str = LOCK,
                   lock_wait: int = RESTORE_LOCK_WAIT, body: str = RESTORE_BODY) -> str:
    """The script the timer runs: nothing until the deadline passed, then one restore.

    The parameters exist for tests of the deadline logic on this machine (a scratch
    state directory, a harmless body); the host gets the defaults.
    """
    s = q(state_dir)
    return f"""#!/bin/sh
# Written by k3s-vps-platform (inv host.harden): the dead-man switch's restore.
S={s}
B="$S/backup"
due() {{ [ "$(date +%s)" -ge "$(cat "$S/deadline" 2>/dev/null || echo 0)" ]; }}
stop_timer() {{ systemctl --no-block stop {UNIT}.timer >/dev/null 2>&1 || true; }}
[ -d "$B" ] || {{ stop_timer; exit 0; }}
due || exit 0
if command -v flock >/dev/null 2>&1; then
  exec 9>{q(lock)}
  if ! flock -w {int(lock_wait)} 9; then
    logger -t {UNIT} "a run still holds {lock} after {int(lock_wait)}s: restoring anyway"
  fi
  due || exit 0  # the run we waited for pushed the deadline when its script ended
fi
[ -d "$B" ] || exit 0  # disarmed while we waited
{body}
date +%s >"$S/fired"
rm -f "$S/deadline"
rm -rf "$B"
logger -t {UNIT} "restored"
stop_timer
"""


def wrap_script(script: str, seconds: int, state_dir: str = STATE_DIR, delay: int = 0) -> str:
    """``script`` as it runs inside the guarded window.

    First: if the host rolled back, say when (on stderr) and exit :data:`ROLLED_BACK_RC`
    without running anything. Else push the deadline, run the script in a subshell (its
    own traps and ``exit`` stay its own), and push the deadline again when it ends.
    """
    s = q(state_dir)
    return (
        f"__S={s}\n"
        'if [ ! -f "$__S/deadline" ]; then\n'
        f"  printf '%s %s\\n' '{FIRED_MARK}' \"$(cat \"$__S/fired\" 2>/dev/null || echo 0)\" >&2\n"
        f"  exit {ROLLED_BACK_RC}\n"
        "fi\n"
        "__push() { [ -f \"$__S/deadline\" ] || return 0\n"
        f"  echo $(( $(date +%s) + {int(seconds)} )) >\"$__S/deadline.tmp\""
        ' && mv -f "$__S/deadline.tmp" "$__S/deadline"; }\n'
        "__push\n"
        + (f"sleep {int(delay)}\n" if delay else "")
        + f"(\n{script.rstrip()}\n)\n"
        "__rc=$?\n__push\nexit $__rc\n")


def arm_script(seconds: int, state_dir: str = STATE_DIR) -> str:
    """Back up (unless a previous, unconfirmed run already did), set the deadline and
    (re)start the timer that checks it."""
    backup = f"{state_dir}/backup"
    poll = max(1, min(10, seconds // 3))
    return (
        f"mkdir -p {state_dir} && chmod 700 {state_dir}\n"
        + write_file(f"{state_dir}/restore.sh", restore_script(state_dir), mode="0700")
        + f"""if [ ! -d {backup} ]; then
  rm -rf {backup}.tmp && mkdir -p {backup}.tmp
  cp -a /etc/ssh {backup}.tmp/ssh
  [ -d {SOCKET_DROP_INS} ] && cp -a {SOCKET_DROP_INS} {backup}.tmp/ssh.socket.d
  [ -d /etc/ufw ] && cp -a /etc/ufw {backup}.tmp/ufw
  [ -f /etc/default/ufw ] && cp -a /etc/default/ufw {backup}.tmp/default-ufw
  [ -d /etc/fail2ban/jail.d ] && cp -a /etc/fail2ban/jail.d {backup}.tmp/jail.d
  if command -v ufw >/dev/null 2>&1 && ufw status | grep -q '^Status: active'; then
    echo active >{backup}.tmp/ufw-state; else echo inactive >{backup}.tmp/ufw-state; fi
  mv {backup}.tmp {backup}
  echo fresh-backup
else
  echo kept-backup
fi
rm -f {state_dir}/fired
echo $(( $(date +%s) + {int(seconds)} )) >{state_dir}/deadline
cat {state_dir}/deadline
systemctl stop {UNIT}.timer >/dev/null 2>&1 || true
systemctl reset-failed {UNIT}.service {UNIT}.timer >/dev/null 2>&1 || true
systemd-run --quiet --unit={UNIT} --on-active={poll}s --on-unit-active={poll}s \\
  --timer-property=AccuracySec=1s /bin/sh {state_dir}/restore.sh
""")


def _fired_line(state_dir: str) -> str:
    return (f'if [ ! -f {state_dir}/deadline ] && [ -f {state_dir}/fired ]; then'
            f' echo "fired $(cat {state_dir}/fired)"; ')


DISARM_SCRIPT = (
    _fired_line(STATE_DIR) + "else\n"
    f"systemctl stop {UNIT}.timer >/dev/null 2>&1 || true\n"
    f"systemctl reset-failed {UNIT}.service {UNIT}.timer >/dev/null 2>&1 || true\n"
    f"rm -rf {q(STATE_DIR + '/backup')} {q(STATE_DIR + '/deadline')}\necho disarmed\nfi\n")

STATE_SCRIPT = (
    _fired_line(STATE_DIR)
    + f"elif [ -f {STATE_DIR}/deadline ]; then echo \"armed $(cat {STATE_DIR}/deadline)\";"
    " else echo disarmed; fi\n")


def parse_state(stdout: str) -> tuple[str, float | None]:
    """``fired 1700000000`` -> ("fired", 1700000000.0); ``disarmed`` -> ("disarmed", None)."""
    match = re.search(r"^(fired|armed|disarmed)(?: (\d+))?$", stdout, re.M)
    if not match:
        return "unknown", None
    return match[1], float(match[2]) if match[2] else None


class DeadmanSwitch:
    """The :class:`tasks.engine.converge.Guard` for hosts."""

    def __init__(self, target: SshTarget, seconds: int, *, confirm_port: int | None = None,
                 delay: int | None = None) -> None:
        self.target = target
        self.seconds = seconds
        #: Where the confirming login connects (the port sshd must answer on afterwards).
        self.confirm_port = confirm_port
        self.delay = int(os.environ.get(TEST_DELAY_ENV, "0") or 0) if delay is None else delay
        self.deadline = 0.0  # our estimate of the host's deadline (host clock = ours)

    def arm(self) -> str:
        result = self.target.run(arm_script(self.seconds))
        if not result.ok:
            raise UserError(f"{self.target.name}: could not arm the dead-man switch, nothing"
                            f" changed: {result.stderr.strip() or result.stdout.strip()}")
        self.deadline = time.time() + self.seconds
        kept = "kept-backup" in result.stdout
        return (f"dead-man switch armed: access settings roll back if the run stalls for"
                f" {self.seconds}s without a new SSH login confirming them"
                + (" (keeping the backup of an earlier unconfirmed run)" if kept else ""))

    def wrap(self, script: str) -> str:
        self.deadline = time.time() + self.seconds + self.delay
        return wrap_script(script, self.seconds, delay=self.delay)

    def rolled_back(self, result: Result) -> str | None:
        if result.rc != ROLLED_BACK_RC or FIRED_MARK not in result.stderr:
            return None
        stamp = result.stderr.split(FIRED_MARK, 1)[1].split()
        return _clock(float(stamp[0])) if stamp and stamp[0].isdigit() and stamp[0] != "0" \
            else "an unknown time"

    def confirm(self) -> str:
        port = self.confirm_port or self.target.settings.port
        try:
            result = self.target.run_on_fresh_connection(DISARM_SCRIPT, port=port)
        except (ConnectionFailed, OSError) as exc:
            raise UserError(f"a new SSH login on port {port} failed after the access changes"
                            f" ({exc}): the host restores its previous SSH/firewall settings"
                            f" at about {_clock(self.deadline)}; do not re-run before it"
                            " has") from None
        state, when = parse_state(result.stdout)
        if state == "fired":
            raise RolledBack(_clock(when) if when else "an unknown time")
        if "disarmed" not in result.stdout:
            raise UserError(f"could not disarm the dead-man switch: {result.stderr.strip()};"
                            f" access settings roll back at about {_clock(self.deadline)}")
        return f"a new SSH login on port {port} works: dead-man switch disarmed"

    def state(self) -> str:
        try:
            result = self.target.run(STATE_SCRIPT, timeout=self.target.settings.connect_timeout)
        except (ConnectionFailed, OSError):
            result = Result("", "", 1)
        state, when = parse_state(result.stdout)
        if state == "fired" and when:
            return (f"dead-man switch fired at {_clock(when)}: the host is back on its"
                    " previous SSH/firewall settings; a re-run applies them again")
        if state == "disarmed":
            return "dead-man switch disarmed"
        deadline = when or self.deadline
        return (f"dead-man switch armed: access settings roll back at about"
                f" {_clock(deadline)} unless a re-run confirms them")


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))
