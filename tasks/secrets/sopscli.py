"""Running sops: argv lists, plaintext only on pipes, the age key as a file path.

Every command line here works with sops 3.8.1 (the spec's) and 3.9+ (3.11.0 in the
tests): the global flags (``--encrypt``, ``--decrypt``, ``--rotate``, ``--config``), not
the subcommands 3.9 added, and no ``--filename-override`` (3.9+). So encryption reads
``/dev/stdin`` with ``--config /dev/null`` and the recipients and ``encrypted_regex`` as
flags: the same values ``.sops.yaml`` holds, both rendered from the inventory.

What a child sops sees: its argv (paths, public keys, flags: never a value), stdin (the
plaintext to encrypt), and this process's environment without ``SOPS_AGE_KEY`` (a
private key), ``SOPS_AGE_KEY_CMD``, ``SOPS_CONFIG``, ``SOPS_AGE_RECIPIENTS``, the sudo
password and the ``STACK_SECRET_*`` inputs, plus ``SOPS_AGE_KEY_FILE`` (a path).
Decrypted output is captured in memory and handed back, never written or printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.secrets.binaries import scrubbed_environment
from tasks.secrets.keys import KEY_FILE_ENV
from tasks.stack.sops import ENCRYPTED_REGEX

NOT_MODIFIED = 200  # sops' exit code when the editor left the file as it was
_NO_KEY = 128  # sops: no master key could decrypt the data key


def child_environment(key_file: Path, base: Mapping[str, str] | None = None,
                      extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child sops (see the module docstring)."""
    env = scrubbed_environment(base)
    env[KEY_FILE_ENV] = str(key_file)
    env.update(extra or {})
    return env


def _redacted(text: str, values: Iterable[str]) -> str:
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):
        text = text.replace(value, "[redacted]")
    return text


def _first_line(stderr: bytes, values: Iterable[str] = ()) -> str:
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return _redacted(lines[0], values)[:200] if lines else "no error output"


@contextmanager
def _private_tmpdir() -> Iterator[str]:
    """A 0700 directory in memory where possible ($XDG_RUNTIME_DIR, /dev/shm): sops edit
    puts the plaintext for the editor there."""
    bases = [os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"]  # noqa: S108  (mkdtemp below)
    base = next((b for b in bases if b and os.path.isdir(b) and os.access(b, os.W_OK)), None)
    path = tempfile.mkdtemp(prefix="stack-sops-", dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Sops:
    """One sops binary, the operator's key file, and the repository's ``.sops.yaml``."""

    binary: str
    key_file: Path
    config: Path

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return child_environment(self.key_file, extra=extra)

    def _run(self, args: list[str], what: str, *, stdin: bytes | None = None,
             values: Iterable[str] = ()) -> bytes:
        try:
            proc = subprocess.run([self.binary, *args], input=stdin, capture_output=True,
                                  env=self.env(), cwd=self.config.parent, timeout=120,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UserError(f"{what}: cannot run sops ({self.binary}): {exc}") from None
        if proc.returncode == _NO_KEY:
            raise UserError(f"{what}: the age key {self.key_file} cannot decrypt it (sops"
                            f" exit {_NO_KEY}): its public key is not among the file's"
                            " recipients; re-encrypt it with inv secrets.rotate from a"
                            " machine whose key is, or set secrets.age_key_file")
        if proc.returncode != 0:
            raise UserError(f"{what}: sops exit {proc.returncode}:"
                            f" {_first_line(proc.stderr, values)}")
        return proc.stdout

    def encrypt(self, plaintext: bytes, recipients: list[str], what: str,
                values: Iterable[str] = ()) -> bytes:
        """``plaintext`` (YAML) encrypted for ``recipients``; it travels on stdin only.
        ``values`` are masked should sops quote one in an error."""
        return self._run(["--config", os.devnull, "--encrypt", "--age", ",".join(recipients),
                          "--encrypted-regex", ENCRYPTED_REGEX, "--input-type", "yaml",
                          "--output-type", "yaml", "/dev/stdin"],
                         what, stdin=plaintext, values=values)

    def decrypt(self, path: Path) -> bytes:
        """The decrypted YAML of ``path``, in memory."""
        return self._run(["--decrypt", "--input-type", "yaml", "--output-type", "yaml",
                          str(path)], f"decrypting {path.name}")

    def rotate(self, path: Path) -> bytes:
        """``path`` re-encrypted with a new data key (the same recipients), as text."""
        return self._run(["--config", str(self.config), "--rotate", "--input-type", "yaml",
                          "--output-type", "yaml", str(path)], f"rotating {path.name}")

    def updatekeys(self, path: Path) -> None:
        """Re-encrypt ``path``'s data key for the recipients of ``.sops.yaml``, in place."""
        self._run(["--config", str(self.config), "updatekeys", "--yes", str(path)],
                  f"updating the keys of {path.name}")

    def edit(self, path: Path) -> bool:
        """``sops path`` in $SOPS_EDITOR / $EDITOR on the terminal; False when unchanged.

        sops hands the editor a 0600 plaintext file in a directory it removes afterwards;
        that directory is made in memory ($XDG_RUNTIME_DIR or /dev/shm) where possible.
        """
        with _private_tmpdir() as tmp:
            try:
                proc = subprocess.run([self.binary, "--config", str(self.config), str(path)],
                                      env=self.env({"TMPDIR": tmp}), cwd=self.config.parent,
                                      check=False)
            except OSError as exc:
                raise UserError(f"editing {path.name}: cannot run sops: {exc}") from None
        if proc.returncode == NOT_MODIFIED:
            return False
        if proc.returncode != 0:
            raise UserError(f"editing {path.name}: sops exit {proc.returncode} (its message"
                            " is above); the file is unchanged")
        return True
