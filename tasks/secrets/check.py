"""``inv secrets.check``: no secret in clear where git can see it. Reads text, runs no sops.

Whole repository: every ``*.sops.yaml`` (in ``secrets/`` and tracked anywhere) is
encrypted, for the inventory's recipients; ``.sops.yaml`` matches the inventory; every
template has its encrypted file; no tracked file matches the ignore rules of
``.gitignore`` (age keys, kubeconfigs, ``*.dec.yaml`` and the other plaintext patterns)
and no tracked YAML holds a Secret with values in clear.

``staged=True`` (the pre-commit hook) looks only at what the commit would add: the
staged paths and their staged content, not the working tree.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tasks.secrets.store import Paths, recipients_of
from tasks.stack import sops as rules

_GIT_NO_GLOBAL = ["-c", "core.excludesFile=/dev/null"]
_TEMPLATED = re.compile(r"^\$\{[^}]+\}$|\{\{")
SECRET_FIELDS = frozenset({"apiVersion", "kind", "metadata", "type", "data", "stringData",
                           "immutable"})
_MAX_BYTES = 2_000_000


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    try:
        proc = subprocess.run(["git", *_GIT_NO_GLOBAL, *args], cwd=root, input=stdin,
                              capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # check-ignore: 1 means "none of them is ignored"
    return proc.stdout if proc.returncode in (0, 1) else None


def is_git_checkout(root: Path) -> bool:
    top = _git(root, "rev-parse", "--show-toplevel")
    return top is not None and bool(top.strip()) and Path(
        top.decode().strip()).resolve() == root.resolve()


def _paths(out: bytes | None) -> list[str]:
    return [p for p in (out or b"").decode(errors="replace").split("\0") if p]


def _is_yaml(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def _is_sops(path: str) -> bool:
    """An encrypted file's name (``.sops.yaml`` itself is sops' config)."""
    return path.endswith((".sops.yaml", ".sops.yml")) and not Path(path).name.startswith(".")


def clear_secret_problems(text: str, source: str) -> list[str]:
    """Secrets in ``text`` whose data/stringData values are in clear (not placeholders,
    not templated, not sops-encrypted). Text that is not YAML holds no Secret we judge."""
    try:
        objs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return []
    out = []
    for obj in objs:
        if not isinstance(obj, dict) or obj.get("kind") != "Secret":
            continue
        if "sops" in obj:
            out += rules.encryption_problems(yaml.safe_dump(obj), source)
            continue
        name = f"{(obj.get('metadata') or {}).get('namespace') or '-'}/" \
               f"{(obj.get('metadata') or {}).get('name')}"
        for field in ("data", "stringData"):
            values = obj.get(field)
            if not isinstance(values, dict):
                continue
            for key, value in values.items():
                if value in (None, "") or (isinstance(value, str) and (
                        rules.PLACEHOLDER.match(value) or _TEMPLATED.search(value))):
                    continue
                out.append(f"{source}: Secret {name}: {field}.{key}: a value in clear;"
                           " keep it encrypted in secrets/*.sops.yaml (inv secrets.init,"
                           " inv secrets.edit)")
    return out


def secret_problems(docs: list[dict[str, Any]], source: str,
                    expected: Mapping[tuple[str, str], Iterable[str]] | None = None
                    ) -> list[str]:
    """Why decrypted ``docs`` are not the Secrets they should be (``expected``: the
    template's (namespace, name) -> keys)."""
    out = []
    seen: dict[tuple[str, str], set[str]] = {}
    for i, doc in enumerate(docs):
        meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
        label = f"{source}: document {i + 1}"
        if doc.get("apiVersion") != "v1" or doc.get("kind") != "Secret":
            out.append(f"{label}: expected apiVersion v1, kind Secret")
        if not meta.get("name") or not meta.get("namespace"):
            out.append(f"{label}: metadata.name and metadata.namespace are required")
        extra = sorted(set(doc) - SECRET_FIELDS)
        if extra:
            out.append(f"{label}: {', '.join(extra)}: not a Secret field (sops encrypts"
                       " only data and stringData: nothing else may hold a value)")
        keys: set[str] = set()
        for field in ("data", "stringData"):
            values = doc.get(field) or {}
            if not isinstance(values, dict) or not all(
                    isinstance(v, str) for v in values.values()):
                out.append(f"{label}: {field}: expected a mapping of strings")
                continue
            keys |= set(values)
        seen[(str(meta.get("namespace")), str(meta.get("name")))] = keys
    for (ns, name), wanted in (expected or {}).items():
        missing = sorted(set(wanted) - seen.get((ns, name), set()))
        if (ns, name) not in seen:
            out.append(f"{source}: Secret {ns}/{name} (from its template) is missing")
        elif missing:
            out.append(f"{source}: Secret {ns}/{name}: {', '.join(missing)}: missing (the"
                       " template has it)")
    return out


def _staged(root: Path) -> tuple[list[str], dict[str, str]]:
    """Paths the commit adds or changes, and the staged text of the YAML among them."""
    paths = _paths(_git(root, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR"))
    wanted = [p for p in paths if _is_yaml(p) and "\n" not in p]
    out = _git(root, "cat-file", "--batch", stdin="".join(f":{p}\n" for p in wanted).encode())
    texts: dict[str, str] = {}
    pos = 0
    data = out or b""
    for path in wanted:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        header = data[pos:end].split()
        pos = end + 1
        if len(header) != 3:  # "<object> missing"
            continue
        size = int(header[2])
        if size <= _MAX_BYTES:
            texts[path] = data[pos:pos + size].decode(errors="replace")
        pos += size + 1
    return paths, texts


def _tracked(root: Path) -> tuple[list[str], dict[str, str]]:
    paths = _paths(_git(root, "ls-files", "-z"))
    texts = {}
    for path in paths:
        file = root / path
        if _is_yaml(path) and file.is_file() and file.stat().st_size <= _MAX_BYTES:
            texts[path] = file.read_text(errors="replace")
    return paths, texts


def git_problems(root: Path, *, staged: bool) -> list[str]:
    """Credentials and plaintext secrets that git tracks (or the commit would add)."""
    paths, texts = _staged(root) if staged else _tracked(root)
    what = "staged" if staged else "tracked by git"
    ignored = _paths(_git(root, "check-ignore", "--no-index", "-z", "--stdin",
                          stdin=b"\0".join(p.encode() for p in paths)))
    out = [f"{p}: {what}, but .gitignore keeps files like it out (a key, a kubeconfig, a"
           f" plaintext secret?): git rm --cached {p}" for p in ignored]
    for path, text in sorted(texts.items()):
        if _is_sops(path):
            out += rules.encryption_problems(text, path)
        else:
            out += clear_secret_problems(text, path)
    return out


def repository_problems(paths: Paths, recipients: list[str]) -> tuple[list[str], list[str]]:
    """Problems and notes of the whole-repository check (see the module docstring)."""
    problems, notes = [], []
    config = paths.sops_config
    if not config.is_file() or config.read_text() != rules.creation_rules(recipients):
        problems.append(f"{paths.rel(config)}: does not list the inventory's"
                        " secrets.age_recipients: run inv secrets.init")
    for path in rules.encrypted_files(paths.secrets_dir):
        text = path.read_text()
        found = rules.encryption_problems(text, paths.rel(path))
        problems += found
        have = recipients_of(text)
        if not found and set(have) != set(recipients):
            problems.append(f"{paths.rel(path)}: encrypted for {', '.join(sorted(have))}, but"
                            " secrets.age_recipients lists"
                            f" {', '.join(sorted(recipients))}: run inv secrets.rotate")
    for template in rules.templates(paths.secrets_dir):
        stem = rules.stem(template)
        target = paths.rel(paths.encrypted(stem))
        if paths.encrypted(stem).exists():
            continue
        if stem in rules.BOOTSTRAP_ONLY:
            notes.append(f"{target}: not written yet (flux.bootstrap writes it)")
        else:
            problems.append(f"{target}: missing (its template is {paths.rel(template)}):"
                            " run inv secrets.init")
    if is_git_checkout(paths.root):
        problems += git_problems(paths.root, staged=False)
    else:
        notes.append(f"{paths.root}: not a git checkout: tracked files not checked")
    return list(dict.fromkeys(problems)), notes  # secrets/*.sops.yaml: once, not twice


def staged_problems(root: Path) -> tuple[list[str], list[str]]:
    if not is_git_checkout(root):
        return [], [f"{root}: not a git checkout: nothing staged to check"]
    return git_problems(root, staged=True), []
