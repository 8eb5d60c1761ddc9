"""Committing the rendered GitOps layout to a local clone of the GitOps repository.

The clone must be on ``gitops.branch`` and clean (nothing of the operator's is swept into
our commit); the layout is written with :func:`tasks.stack.gitops.write` (only files it
wrote before are replaced), committed when something changed, and pushed only when
asked, never forced: a remote that moved on is one line saying to pull first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.engine.target import child_environment
from tasks.engine.text import escape


def git(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(clone), *args], capture_output=True,
                              text=True, env=child_environment(), timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"git {args[0]} in {clone}: {exc}") from None


def _last(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    return escape(lines[-1].strip(), 200) if lines else f"exit {proc.returncode}"


def check_clone(clone: Path, branch: str) -> None:
    """Refuse a folder that is not a clean work tree on ``branch``."""
    inside = git(clone, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise UserError(f"{clone}: not a git clone (git clone the GitOps repository there"
                        " first)")
    head = git(clone, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    if head != branch:
        raise UserError(f"{clone}: on branch {head or '?'}, gitops.branch is {branch}:"
                        f" git -C {clone} switch {branch}")
    dirty = git(clone, "status", "--porcelain").stdout.splitlines()
    if dirty:
        raise UserError(f"{clone}: {len(dirty)} uncommitted change(s) ({escape(dirty[0], 80)}"
                        "...): commit or stash them first, so that our commit holds only the"
                        " rendered layout")


def commit(clone: Path, message: str) -> str | None:
    """Stage everything the render changed and commit it; the short hash, or None when
    the clone already had this layout."""
    added = git(clone, "add", "-A", "--", ".")
    if added.returncode != 0:
        raise UserError(f"git add in {clone}: {_last(added)}")
    if git(clone, "diff", "--cached", "--quiet").returncode == 0:
        return None
    done = git(clone, "commit", "-q", "-m", message)
    if done.returncode != 0:
        raise UserError(f"git commit in {clone}: {_last(done)}")
    return git(clone, "rev-parse", "--short", "HEAD").stdout.strip()


def push(clone: Path, branch: str) -> None:
    """``git push origin HEAD:<branch>``, never forced."""
    done = git(clone, "push", "origin", f"HEAD:refs/heads/{branch}")
    if done.returncode != 0:
        text = (done.stderr + done.stdout).lower()
        if "non-fast-forward" in text or "rejected" in text or "fetch first" in text:
            raise UserError(f"{clone}: the remote branch {branch} has commits this clone does"
                            f" not: git -C {clone} pull --rebase, then run gitops.push again"
                            " (never a force push)")
        raise UserError(f"git push from {clone}: {_last(done)}")
