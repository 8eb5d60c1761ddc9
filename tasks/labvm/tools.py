"""Host programs the lab needs, and running them without a shell.

Every command is an argv list (no shell strings). Secrets go to a program's stdin,
never into its argv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tasks.engine.errors import UserError

APT_HINT = "apt-get install qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client"

# program -> Debian package that provides it
PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "openssl": "openssl",
    "tar": "tar",
    "chroot": "coreutils",
}

_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def which(program: str) -> str | None:
    """Find ``program`` on PATH, also in the sbin folders (not on a user's PATH)."""
    path = os.environ.get("PATH", os.defpath) + os.pathsep + os.pathsep.join(_SBIN)
    return shutil.which(program, path=path)


def require(*programs: str) -> dict[str, str]:
    """Full paths of ``programs``; raise one UserError naming every missing one."""
    found = {p: which(p) for p in programs}
    missing = [p for p, path in found.items() if path is None]
    if missing:
        pkgs = sorted({PACKAGES.get(p, p) for p in missing})
        raise UserError(f"{', '.join(missing)} not installed: apt-get install"
                        f" {' '.join(pkgs)} (the lab needs: {APT_HINT})")
    return {p: path for p, path in found.items() if path is not None}


def is_root() -> bool:
    return os.geteuid() == 0


def run(argv: Sequence[str | Path], *, what: str, stdin: bytes | None = None,
        log: Path | None = None, timeout: float | None = None, cwd: Path | None = None) -> str:
    """Run ``argv``; return stdout, or raise UserError with ``what`` and the error's tail.

    With ``log``, stdout and stderr are appended to that file instead (long builds),
    and the error points at it.
    """
    args = [str(a) for a in argv]
    try:
        if log is not None:
            with log.open("ab") as out:
                out.write(f"\n$ {' '.join(args)}\n".encode())
                out.flush()
                proc = subprocess.run(args, input=stdin, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=timeout, cwd=cwd, check=False)
            if proc.returncode != 0:
                raise UserError(f"{what} failed (exit {proc.returncode}): see {log}")
            return ""
        proc = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout,
                              cwd=cwd, check=False)
    except FileNotFoundError:
        raise UserError(f"{args[0]} not installed (the lab needs: {APT_HINT})") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{what} timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(
            errors="replace").strip()
        tail = err.splitlines()[-1] if err else "no error output"
        raise UserError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout.decode(errors="replace")
