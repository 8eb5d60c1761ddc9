"""The operator's side: where backups are, their names, retention, age in and out.

``<backup.dir>/<cluster_name>/<UTC time>.tar.age``, e.g. ``backups/vps/20261202T071500Z
.tar.age``: the folder 0700, each file 0600. The tar arrives from the host as a stream
and goes straight into ``age -r ...`` (one ``-r`` per ``secrets.age_recipients``), whose
output is the only thing written; a restore decrypts with the operator's age identity
into memory (age's stdout, captured). Plaintext never touches this machine's disk.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tasks.engine.errors import UserError
from tasks.secrets.binaries import scrubbed_environment

SUFFIX = ".tar.age"
NAME = re.compile(r"^(\d{8}T\d{6}Z)\.tar\.age$")


def stamp(now: datetime | None = None) -> str:
    """The UTC time a backup is named after: ``20261202T071500Z``."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def folder(base: Path, cluster: str) -> Path:
    return base / cluster


def backups(where: Path) -> list[Path]:
    """The backups in ``where``, oldest first (other files are not ours: ignored)."""
    if not where.is_dir():
        return []
    return sorted((p for p in where.iterdir() if NAME.match(p.name) and p.is_file()),
                  key=lambda p: p.name)


def to_remove(names: list[str], keep: int) -> list[str]:
    """Of backup file names, those retention removes: all but the ``keep`` newest."""
    ours = sorted(n for n in names if NAME.match(n))
    return ours[:max(0, len(ours) - keep)]


def private_folder(path: Path) -> None:
    """``path`` (and its parents we create) as a 0700 folder; a looser one is tightened."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)


@dataclass
class Encrypting:
    """An age process encrypting what is fed to it into ``part`` (then renamed)."""

    proc: subprocess.Popen[bytes]
    part: Path
    final: Path
    errors: bytearray
    broken: bool = False  # age stopped reading (it failed: its exit code says why)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        if self.broken:
            return
        try:
            self.proc.stdin.write(data)
        except OSError:  # BrokenPipeError: age exited early
            self.broken = True


@contextlib.contextmanager
def encrypting(age: str, recipients: list[str], final: Path) -> Iterator[Encrypting]:
    """Feed the plaintext with ``write``; on a clean exit of the block and of age the
    file is renamed to ``final`` (0600); on any failure nothing is left."""
    if final.exists():
        raise UserError(f"{final} already exists: one backup per second at most")
    part = final.with_name(f".{final.name}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    argv = [age, *(a for r in recipients for a in ("-r", r))]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=fd,
                                stderr=subprocess.PIPE, env=scrubbed_environment())
    except OSError as exc:
        os.close(fd)
        part.unlink(missing_ok=True)
        raise UserError(f"cannot run {age}: {exc.strerror or exc}") from None
    os.close(fd)
    errors = bytearray()
    assert proc.stderr is not None
    reader = threading.Thread(target=_collect, args=(proc.stderr, errors), daemon=True)
    reader.start()
    enc = Encrypting(proc, part, final, errors)
    try:
        yield enc
    except BaseException:
        _stop(proc, reader)
        part.unlink(missing_ok=True)
        raise
    assert proc.stdin is not None
    with contextlib.suppress(OSError):
        proc.stdin.close()
    rc = proc.wait()
    reader.join()
    if rc != 0:
        part.unlink(missing_ok=True)
        raise UserError(f"age could not encrypt the backup (exit {rc}):"
                        f" {_age_error(bytes(errors))}")
    os.replace(part, final)


def _age_error(stderr: bytes) -> str:
    """age's own line saying what went wrong (``age: error: ...``), not its report link."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()
             if line.strip()]
    said = [line for line in lines if "error:" in line] or lines[-1:] or ["no output"]
    return said[0][:200]


def _collect(stream: IO[bytes], into: bytearray) -> None:
    into += stream.read()


def _stop(proc: subprocess.Popen[bytes], reader: threading.Thread) -> None:
    with contextlib.suppress(OSError):
        proc.kill()
    proc.wait()
    reader.join()


def decrypt(age: str, key_file: Path, path: Path) -> bytes:
    """The archive in clear, in memory (``age -d -i KEY_FILE PATH``: only paths in argv)."""
    if not key_file.is_file():
        raise UserError(f"age key file {key_file} not found: a restore needs the identity"
                        " of one of secrets.age_recipients (secrets.age_key_file)")
    try:
        proc = subprocess.run([age, "-d", "-i", str(key_file), str(path)],
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=600,
                              check=False, env=scrubbed_environment())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"cannot run {age}: {exc}") from None
    if proc.returncode != 0:
        raise UserError(f"{path}: age could not decrypt it with {key_file}:"
                        f" {_age_error(proc.stderr)}")
    return proc.stdout


def member(tar_bytes: bytes, name: str, source: str) -> bytes:
    """One file of the (in-memory) archive."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            f = tar.extractfile(name)
            if f is None:
                raise KeyError(name)
            return f.read()
    except (tarfile.TarError, KeyError) as exc:
        raise UserError(f"{source}: not a backup of this tool (no {name}: {exc})") from None


def members(tar_bytes: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())
