"""``inv secrets.hook``: install the pre-commit hook that runs ``inv secrets.check --staged``.

The repository's ``.githooks/pre-commit`` does the work; the installed hook (in git's
hooks directory, ``core.hooksPath`` when set) is a two-line stub that runs it from the
checkout being committed to, so every worktree uses its own copy. A different
pre-commit hook already there is never replaced without ``force``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.secrets.outcome import CHANGED, OK, WOULD_CHANGE, Outcome
from tasks.secrets.store import write_atomic

SCRIPT = ".githooks/pre-commit"
STUB = ("#!/bin/sh\n"
        "# Installed by `inv secrets.hook`: runs the checkout's .githooks/pre-commit.\n"
        f'script="$(git rev-parse --show-toplevel)/{SCRIPT}"\n'
        'if [ ! -x "$script" ]; then\n'
        f'  echo "pre-commit: no {SCRIPT} in this checkout: secrets not checked" >&2\n'
        "  exit 0\n"
        "fi\n"
        'exec "$script" "$@"\n')


def hooks_dir(root: Path) -> Path:
    try:
        proc = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-path",
                               "hooks"], cwd=root, capture_output=True, text=True,
                              check=False, timeout=30)
    except OSError as exc:
        raise UserError(f"git: cannot run it: {exc}") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        raise UserError(f"{root}: not a git checkout (git rev-parse: exit {proc.returncode})")
    hooks = Path(proc.stdout.strip())
    common = subprocess.run(["git", "rev-parse", "--path-format=absolute",
                             "--git-common-dir"], cwd=root, capture_output=True, text=True,
                            check=False, timeout=30).stdout.strip()
    inside = [Path(common).resolve(), root.resolve()]
    if not any(d == hooks.resolve() or d in hooks.resolve().parents for d in inside):
        raise UserError(f"core.hooksPath is {hooks}, outside this repository (other"
                        f" repositories use it too): run {SCRIPT} from your pre-commit"
                        " hook there instead")
    return hooks


def install(root: Path, *, check: bool = False, force: bool = False) -> Outcome:
    if not os.access(root / SCRIPT, os.X_OK):
        raise UserError(f"{root / SCRIPT}: missing or not executable")
    target = hooks_dir(root) / "pre-commit"
    current = target.read_text(errors="replace") if target.exists() else None
    if current == STUB and os.access(target, os.X_OK):
        return Outcome(OK, str(target), f"runs {SCRIPT}")
    if current is not None and current != STUB and not force:
        raise UserError(f"{target}: another pre-commit hook is there: add a line running"
                        f" {SCRIPT} to it, or pass --force to replace it")
    if check:
        return Outcome(WOULD_CHANGE, str(target), f"install (runs {SCRIPT})")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, STUB.encode(), mode=0o755)
    return Outcome(CHANGED, str(target), f"installed (runs {SCRIPT})")
