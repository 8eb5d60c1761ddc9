"""The base image: Debian bookworm by debootstrap, built once and cached by recipe hash.

The root filesystem is made without mounting anything: debootstrap into a folder,
``mkfs.ext4 -d folder``, then ``qemu-img convert -O qcow2``. The kernel and initrd are
copied next to the image for direct kernel boot. debootstrap needs root: when not
root, the build runs through ``sudo`` (``python -m tasks.labvm.image``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.engine.errors import UserError
from tasks.labvm import tools
from tasks.labvm.paths import LabPaths
from tasks.labvm.recipe import Recipe, recipe_hash
from tasks.repo import REPO_ROOT

Say = Callable[[str], None]
BUILD_TOOLS = ("debootstrap", "chroot", "mkfs.ext4", "qemu-img")
DISK, KERNEL, INITRD, INFO = "rootfs.qcow2", "vmlinuz", "initrd.img", "build.json"


@dataclass(frozen=True)
class BaseImage:
    """A finished base image: disk, kernel, initrd and what the build recorded."""

    dir: Path
    info: dict[str, Any]

    @property
    def disk(self) -> Path:
        return self.dir / DISK

    @property
    def kernel(self) -> Path:
        return self.dir / KERNEL

    @property
    def initrd(self) -> Path:
        return self.dir / INITRD

    @property
    def hash(self) -> str:
        return self.dir.name

    @property
    def machine_id(self) -> str:
        return str(self.info.get("machine_id", ""))

    @property
    def age_seconds(self) -> float:
        return time.time() - float(self.info.get("built_at", time.time()))


def load(directory: Path) -> BaseImage | None:
    """The base image in ``directory`` if its build finished (build.json is written last)."""
    try:
        info = json.loads((directory / INFO).read_text())
    except (OSError, ValueError):
        return None
    image = BaseImage(directory, info)
    if not all(p.is_file() for p in (image.disk, image.kernel, image.initrd)):
        return None
    return image


def ensure(paths: LabPaths, say: Say, recipe: Recipe | None = None) -> tuple[BaseImage, bool]:
    """The cached base image for ``recipe``, building it first if needed.

    Returns the image and whether it was built now.
    """
    recipe = recipe or Recipe()
    target = paths.base(recipe_hash(recipe))
    existing = load(target)
    if existing is not None:
        return existing, False
    tools.require(*BUILD_TOOLS)
    paths.base_root.mkdir(parents=True, exist_ok=True)
    log = paths.base_root / f"build-{target.name}.log"
    log.write_text("")
    say(f"building the base image {target.name} (debootstrap {recipe.suite}, about 2 min;"
        f" log: {log})")
    started = time.monotonic()
    if tools.is_root():
        build(target, recipe, log, say)
    else:
        _build_through_sudo(target, log, say)
    image = load(target)
    if image is None:
        raise UserError(f"the base image build left no usable image in {target}: see {log}")
    say(f"base image built in {time.monotonic() - started:.0f}s"
        f" (debootstrap {image.info.get('debootstrap_seconds', 0):.0f}s)")
    return image, True


def _build_through_sudo(target: Path, log: Path, say: Say) -> None:
    sudo = tools.require("sudo")["sudo"]
    say("debootstrap needs root: running the image build through sudo")
    argv = [sudo, "--", sys.executable, "-m", "tasks.labvm.image", str(target), str(log),
            f"{os.getuid()}:{os.getgid()}"]
    proc = subprocess.run(argv, cwd=REPO_ROOT, check=False)
    if proc.returncode != 0:
        raise UserError(f"the base image build through sudo failed (exit {proc.returncode}):"
                        f" see {log}")


def build(target: Path, recipe: Recipe, log: Path, say: Say) -> None:
    """Build the image into ``target`` (as root). Leaves nothing behind on failure."""
    bins = tools.require(*BUILD_TOOLS)
    work = target.parent / f".build-{target.name}"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "root"
    root.mkdir(parents=True)
    try:
        t0 = time.monotonic()
        tools.run([bins["debootstrap"], "--include=" + ",".join(recipe.packages),
                   "--components=main", recipe.suite, root, recipe.mirror],
                  what="debootstrap", log=log, timeout=3600)
        debootstrap_seconds = time.monotonic() - t0
        say(f"debootstrap done in {debootstrap_seconds:.0f}s; configuring the image")
        _configure(root, recipe, log, say, chroot=bins["chroot"])
        machine_id = (root / "etc/machine-id").read_text().strip()
        kernel = _extract_boot_files(root, work)
        raw = work / "rootfs.raw"
        with raw.open("wb") as f:
            f.truncate(_size_bytes(recipe.image_size))
        tools.run([bins["mkfs.ext4"], "-q", "-F", "-L", "lab-root", "-E", "lazy_itable_init=0",
                   "-d", root, raw], what="mkfs.ext4 -d", log=log)
        tools.run([bins["qemu-img"], "convert", "-O", "qcow2", raw, work / DISK],
                  what="qemu-img convert", log=log)
        raw.unlink()
        shutil.rmtree(root)
        info = {"hash": target.name, "built_at": time.time(), "kernel": kernel,
                "machine_id": machine_id, "debootstrap_seconds": round(debootstrap_seconds, 1),
                "seconds": round(time.monotonic() - t0, 1), "recipe": json.loads(
                    recipe.to_json())}
        (work / INFO).write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _configure(root: Path, recipe: Recipe, log: Path, say: Say, *, chroot: str) -> None:
    """Write the recipe's files, enable its units, drop what each VM must not share."""
    for f in recipe.files:
        path = root / f.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()
        path.write_text(f.content)
        path.chmod(f.mode)
    tools.run([chroot, root, "systemctl", "enable", *recipe.enable_units],
              what="systemctl enable (in the image)", log=log)
    try:
        tools.run([chroot, root, "update-initramfs", "-u", "-k", "all"],
                  what="update-initramfs (in the image)", log=log)
    except UserError:
        say("could not rebuild the initrd smaller: keeping Debian's (boots slower)")
    # Downloaded .debs and the random seed must not be in the image.
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    (root / "var/lib/systemd/random-seed").unlink(missing_ok=True)


def _extract_boot_files(root: Path, work: Path) -> str:
    """Copy the kernel and initrd out of /boot for direct kernel boot; return the version."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise UserError("the image has no kernel in /boot (linux-image-amd64 missing?)")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = root / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise UserError(f"the image has no initrd for kernel {version} in /boot")
    shutil.copyfile(kernels[-1], work / KERNEL)
    shutil.copyfile(initrd, work / INITRD)
    return version


def _size_bytes(size: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if size and size[-1] in units:
        return int(size[:-1]) * units[size[-1]]
    return int(size)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, gid, follow_symlinks=False)


def main(argv: list[str]) -> int:
    """``sudo python -m tasks.labvm.image TARGET LOG UID:GID``: build as root, give back."""
    target, log = Path(argv[0]), Path(argv[1])
    uid, gid = (int(x) for x in argv[2].split(":"))
    try:
        build(target, Recipe(), log, print)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for p in (target, log):
            if p.exists():
                _chown_tree(p, uid, gid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
