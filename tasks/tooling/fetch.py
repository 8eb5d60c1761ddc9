"""Downloads and digests: urllib to a temporary file, sha256 while it streams.

Every failure is one :class:`UserError` line naming the URL (HTTP status, or why the
connection failed: offline, refused, timed out); nothing is left behind.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import IO

from tasks.engine.errors import UserError
from tasks.engine.text import escape

CHUNK = 1 << 20
TIMEOUT = 60.0
USER_AGENT = "k3s-vps-platform tools.install (python urllib)"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(src: IO[bytes], dest: Path) -> str:
    """Write ``src`` to ``dest`` (created new); return its sha256."""
    digest = hashlib.sha256()
    with dest.open("xb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, *, timeout: float = TIMEOUT) -> str:
    """Fetch ``url`` (http or https only) into ``dest``; return its sha256."""
    if not url.startswith(("https://", "http://")):
        raise UserError(f"refusing to download {escape(url, 200)}: only http(s) URLs")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return _copy(response, dest)
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        reason = f"cannot connect ({_reason(exc.reason)}); offline? see README: Tools"
    except TimeoutError:
        reason = f"no answer within {timeout:.0f}s; offline? see README: Tools"
    except OSError as exc:
        reason = f"connection failed ({exc.strerror or exc}); offline? see README: Tools"
    dest.unlink(missing_ok=True)
    raise UserError(f"download failed: {url}: {reason}")


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return escape(str(reason), 120)


def extract_tar_member(archive: Path, member: str, dest: Path) -> str:
    """Copy the regular file ``member`` of a .tar.gz to ``dest``; return its sha256."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise UserError(f"{archive.name}: no {member} inside") from None
            f = tar.extractfile(info) if info.isreg() else None
            if f is None:
                raise UserError(f"{archive.name}: {member} is not a regular file")
            with f:
                return _copy(f, dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"{archive.name}: not a readable .tar.gz ({exc})") from None


def extract_zip_member(archive: Path, member: str, dest: Path) -> str:
    """Copy ``member`` of a zip file to ``dest``; return its sha256."""
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise UserError(f"{archive.name}: no {member} inside") from None
            with zf.open(info) as f:
                return _copy(f, dest)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{archive.name}: not a readable zip file ({exc})") from None


def copy_file(src: Path, dest: Path) -> str:
    with src.open("rb") as f:
        digest = _copy(f, dest)
    shutil.copymode(src, dest)
    return digest
