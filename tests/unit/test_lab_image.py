"""The base image cache: reuse by recipe hash, and the build through sudo when not root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.engine.errors import UserError
from tasks.labvm import image, tools
from tasks.labvm.paths import LabPaths
from tasks.labvm.recipe import recipe_hash


def finished_base(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for f in (image.DISK, image.KERNEL, image.INITRD):
        (directory / f).write_text("")
    (directory / image.INFO).write_text(json.dumps({"machine_id": "a" * 32}))


def test_cached_image_is_reused_without_building(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    paths = LabPaths(tmp_path)
    finished_base(paths.base(recipe_hash()))
    monkeypatch.setattr(image, "build", lambda *a: pytest.fail("rebuilt a cached image"))
    base, built = image.ensure(paths, say=lambda s: None)
    assert not built and base.machine_id == "a" * 32


def test_unfinished_image_is_not_used(tmp_path: Path) -> None:
    d = tmp_path / "x"
    finished_base(d)
    (d / image.KERNEL).unlink()
    assert image.load(d) is None


def test_not_root_builds_through_sudo_and_says_so(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    paths = LabPaths(tmp_path)
    target = paths.base(recipe_hash())
    calls: list[dict[str, Any]] = []

    def fake_run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append({"argv": argv, **kw})
        finished_base(target)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(tools, "is_root", lambda: False)
    monkeypatch.setattr(tools, "require", lambda *p: {x: f"/usr/bin/{x}" for x in p})
    monkeypatch.setattr(subprocess, "run", fake_run)
    said: list[str] = []
    base, built = image.ensure(paths, say=said.append)
    assert built and base.dir == target
    (call,) = calls
    assert call["argv"][:5] == ["/usr/bin/sudo", "--", sys.executable, "-m",
                                "tasks.labvm.image"]
    assert call["argv"][5] == str(target)
    assert any("through sudo" in s for s in said)


def test_failed_sudo_build_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "is_root", lambda: False)
    monkeypatch.setattr(tools, "require", lambda *p: {x: x for x in p})
    monkeypatch.setattr(subprocess, "run",
                        lambda argv, **kw: subprocess.CompletedProcess(argv, 1))
    with pytest.raises(UserError, match=r"through sudo failed \(exit 1\): see .*build-"):
        image.ensure(LabPaths(tmp_path), say=lambda s: None)


def test_size_bytes() -> None:
    assert image._size_bytes("16G") == 16 << 30
    assert image._size_bytes("512M") == 512 << 20
    assert image._size_bytes("1024") == 1024
