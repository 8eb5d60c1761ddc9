"""The dead-man switch: SSH and firewall changes roll back unless a new login confirms.

Before the first access-related change, the host saves /etc/ssh, /etc/ufw, the UFW
defaults and the fail2ban jails, and a transient systemd timer is armed to restore them
after ``seconds``. Once every access step is done, a *fresh* SSH connection disarms it;
if that login fails, the operator is told when the host will roll back, and it will.

A run killed half-way leaves the timer and the first backup in place: a re-run keeps
that backup (the state before any change) and re-arms the timer.
"""

from __future__ import annotations

import time

from tasks.engine.errors import ConnectionFailed, UserError
from tasks.engine.shell import q, write_file
from tasks.engine.target import LOCK, SshTarget

STATE_DIR = "/var/lib/stack-deadman"
BACKUP = f"{STATE_DIR}/backup"
RESTORE = f"{STATE_DIR}/restore.sh"
UNIT = "stack-deadman"

RESTORE_SCRIPT = f"""#!/bin/sh
# Written by k3s-vps-platform (inv host.harden): restores SSH/firewall access settings.
B={BACKUP}
[ -d "$B" ] || exit 0
# Hold the lock runs take, so a run started now waits until access is fully restored;
# a run that still holds it (stuck) delays the restore by a minute at most.
if command -v flock >/dev/null 2>&1; then exec 9>{LOCK}; flock -w 60 9 || true; fi
logger -t {UNIT} "no confirmation received: restoring SSH, UFW and fail2ban settings"
if [ -d "$B/ssh" ]; then rm -rf /etc/ssh && cp -a "$B/ssh" /etc/ssh; fi
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
sshd -t && {{ systemctl reload ssh || systemctl restart ssh; }}
rm -rf "$B"
logger -t {UNIT} "restored"
"""


def arm_script(seconds: int) -> str:
    """Back up (unless a previous, unconfirmed run already did) and (re)start the timer."""
    return (
        f"mkdir -p {STATE_DIR} && chmod 700 {STATE_DIR}\n"
        + write_file(RESTORE, RESTORE_SCRIPT, mode="0700")
        + f"""if [ ! -d {BACKUP} ]; then
  mkdir -p {BACKUP}.tmp
  cp -a /etc/ssh {BACKUP}.tmp/ssh
  [ -d /etc/ufw ] && cp -a /etc/ufw {BACKUP}.tmp/ufw
  [ -f /etc/default/ufw ] && cp -a /etc/default/ufw {BACKUP}.tmp/default-ufw
  [ -d /etc/fail2ban/jail.d ] && cp -a /etc/fail2ban/jail.d {BACKUP}.tmp/jail.d
  if command -v ufw >/dev/null 2>&1 && ufw status | grep -q '^Status: active'; then
    echo active >{BACKUP}.tmp/ufw-state; else echo inactive >{BACKUP}.tmp/ufw-state; fi
  mv {BACKUP}.tmp {BACKUP}
  echo fresh-backup
else
  echo kept-backup
fi
systemctl stop {UNIT}.timer >/dev/null 2>&1 || true
systemctl reset-failed {UNIT}.service {UNIT}.timer >/dev/null 2>&1 || true
systemd-run --quiet --unit={UNIT} --on-active={int(seconds)}s \\
  --timer-property=AccuracySec=1s /bin/sh {RESTORE}
""")


DISARM_SCRIPT = (f"systemctl stop {UNIT}.timer >/dev/null 2>&1 || true\n"
                 f"systemctl reset-failed {UNIT}.service {UNIT}.timer >/dev/null 2>&1 || true\n"
                 f"rm -rf {q(BACKUP)}\necho disarmed\n")


class DeadmanSwitch:
    """The :class:`tasks.engine.converge.Guard` for hosts."""

    def __init__(self, target: SshTarget, seconds: int) -> None:
        self.target = target
        self.seconds = seconds
        self.deadline = 0.0

    def arm(self) -> str:
        result = self.target.run(arm_script(self.seconds))
        if not result.ok:
            raise UserError(f"{self.target.name}: could not arm the dead-man switch, nothing"
                            f" changed: {result.stderr.strip() or result.stdout.strip()}")
        self.deadline = time.time() + self.seconds
        kept = "kept-backup" in result.stdout
        return (f"dead-man switch armed: access settings roll back at {_clock(self.deadline)}"
                f" unless a new SSH login confirms"
                + (" (keeping the backup of an earlier unconfirmed run)" if kept else ""))

    def confirm(self) -> str:
        try:
            result = self.target.run_on_fresh_connection(DISARM_SCRIPT)
        except (ConnectionFailed, OSError) as exc:
            raise UserError(f"a new SSH login failed after the access changes ({exc}): the host"
                            f" restores its previous SSH/firewall settings at"
                            f" {_clock(self.deadline)}; do not re-run before it has") from None
        if "disarmed" not in result.stdout:
            raise UserError(f"could not disarm the dead-man switch: {result.stderr.strip()};"
                            f" access settings roll back at {_clock(self.deadline)}")
        return "a new SSH login works: dead-man switch disarmed"


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))
