"""The operator's age key: where it lives, creating it, reading its public keys.

Where: the inventory's ``secrets.age_key_file`` when set, else ``$SOPS_AGE_KEY_FILE``,
else sops' own default (``$XDG_CONFIG_HOME/sops/age/keys.txt``, else
``~/.config/sops/age/keys.txt``), so plain ``sops`` finds the same key. Never inside the
repository: a key there is one ``git add -f`` away from being published.

The private key never passes through this process: ``age-keygen -o`` writes it (mode
0600, refusing an existing file), and ``age-keygen -y`` gives the public keys back.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.model.load import Loaded
from tasks.secrets.binaries import scrubbed_environment

KEY_FILE_ENV = "SOPS_AGE_KEY_FILE"
_PUBLIC = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


@dataclass(frozen=True)
class KeyFile:
    """Where the operator's age key is, and which setting chose it."""

    path: Path
    source: str

    def __str__(self) -> str:
        return str(self.path)


def locate(loaded: Loaded, env: Mapping[str, str] | None = None) -> KeyFile:
    """The key file for this inventory (see the module docstring for the order)."""
    env = os.environ if env is None else env
    if loaded.data.secrets.age_key_file:
        return KeyFile(Path(os.path.abspath(loaded.resolve(loaded.data.secrets.age_key_file))),
                       "secrets.age_key_file")
    if env.get(KEY_FILE_ENV):
        return KeyFile(Path(os.path.abspath(os.path.expanduser(env[KEY_FILE_ENV]))),
                       f"${KEY_FILE_ENV}")
    config = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return KeyFile(Path(os.path.abspath(config)) / "sops" / "age" / "keys.txt",
                   "sops' default")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def refuse_inside(key: KeyFile, root: Path) -> None:
    """Refuse a key file inside the repository (as written, or through symlinks)."""
    top = root.resolve()
    lexical = Path(os.path.normpath(key.path))
    for path in (lexical, key.path.resolve()):
        if _inside(path, top) or _inside(path, Path(os.path.normpath(root))):
            raise UserError(
                f"age key file {key.path} ({key.source}) is inside this repository ({top}):"
                " keep it outside (the default is ~/.config/sops/age/keys.txt); set"
                " secrets.age_key_file or $SOPS_AGE_KEY_FILE to a path outside it")


def mode_problem(path: Path) -> str | None:
    """Why the key file's permissions are too open (None when only its owner can read)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return f"mode {mode:04o}: others can read it"
    return None


def public_keys(path: Path, keygen: str) -> list[str]:
    """The public key of every identity in the key file (``age-keygen -y``)."""
    proc = subprocess.run([keygen, "-y", str(path)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30, check=False,
                          env=scrubbed_environment())
    keys = proc.stdout.split()
    if proc.returncode != 0 or not keys or not all(_PUBLIC.match(k) for k in keys):
        # age-keygen's message is not shown: it could quote the file.
        raise UserError(f"age key file {path}: not an age identity file (age-keygen -y"
                        f" exit {proc.returncode}); point secrets.age_key_file at your age"
                        " key, or move this file away and run inv secrets.init")
    return keys


def create(path: Path, keygen: str) -> None:
    """A new age identity at ``path`` (mode 0600); an existing file is never replaced."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    proc = subprocess.run([keygen, "-o", str(path)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=False,
                          env=scrubbed_environment())
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[:1] or ["no error output"]
        raise UserError(f"age-keygen -o {path}: exit {proc.returncode}: {tail[0]}")
    os.chmod(path, 0o600)
