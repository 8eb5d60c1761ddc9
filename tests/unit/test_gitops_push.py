"""inv gitops.push with real git: a bare origin, clones of it, the real task."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def sh(*argv: str, cwd: Path | None = None) -> str:
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    bare = tmp_path / "origin.git"
    sh("git", "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    sh("git", "clone", "-q", str(bare), str(seed))
    for key, value in (("user.name", "Seed"), ("user.email", "seed@example.com")):
        sh("git", "-C", str(seed), "config", key, value)
    (seed / "README.md").write_text("the GitOps repository\n")
    sh("git", "-C", str(seed), "add", "README.md")
    sh("git", "-C", str(seed), "commit", "-q", "-m", "start")
    sh("git", "-C", str(seed), "push", "-q", "origin", "main")
    return bare


def clone(origin: Path, where: Path) -> Path:
    sh("git", "clone", "-q", str(origin), str(where))
    for key, value in (("user.name", "Operator"), ("user.email", "ops@example.com")):
        sh("git", "-C", str(where), "config", key, value)
    return where


def test_push_commits_the_layout_once_and_never_forces(origin: Path, tmp_path: Path) -> None:
    work = clone(origin, tmp_path / "work")
    r = inv("gitops.push", "--clone", str(work), "--push")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "committed" in r.stdout and "pushed to origin main" in r.stdout
    files = sh("git", "-C", str(origin), "ls-tree", "-r", "--name-only", "main").split()
    assert "clusters/vps/kustomization.yaml" in files and "README.md" in files
    again = inv("gitops.push", "--clone", str(work), "--push")
    assert again.returncode == 0 and "already has this layout: nothing to commit" in again.stdout
    # someone else pushed meanwhile: refused, never forced
    other = clone(origin, tmp_path / "other")
    (other / "NOTES.md").write_text("theirs\n")
    sh("git", "-C", str(other), "add", "NOTES.md")
    sh("git", "-C", str(other), "commit", "-q", "-m", "theirs")
    sh("git", "-C", str(other), "push", "-q", "origin", "main")
    (work / "local.md").write_text("ours\n")
    sh("git", "-C", str(work), "add", "local.md")
    sh("git", "-C", str(work), "commit", "-qm", "local edit")
    r = inv("gitops.push", "--clone", str(work), "--push", "--message", "x")
    assert r.returncode == 1
    assert "the remote branch main has commits this clone does not" in r.stderr
    assert "theirs" in sh("git", "-C", str(origin), "log", "--format=%s", "main")


def test_a_dirty_clone_or_another_branch_is_refused(origin: Path, tmp_path: Path) -> None:
    work = clone(origin, tmp_path / "work")
    (work / "mine.txt").write_text("not committed\n")
    r = inv("gitops.push", "--clone", str(work))
    assert r.returncode == 1 and "1 uncommitted change(s)" in r.stderr
    (work / "mine.txt").unlink()
    sh("git", "-C", str(work), "switch", "-q", "-c", "feature")
    r = inv("gitops.push", "--clone", str(work))
    assert r.returncode == 1
    assert "on branch feature, gitops.branch is main" in r.stderr
    r = inv("gitops.push", "--clone", str(tmp_path))
    assert r.returncode == 1 and "not a git clone" in r.stderr
