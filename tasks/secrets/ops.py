"""secrets.init, secrets.rotate and secrets.edit: check first, change only what differs.

Each returns a :class:`Report` (one line per key file, config, encrypted file); plan
mode (``check``) reads everything and changes nothing. sops is refused unless it is the
version the inventory pins, before anything changes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tasks.engine.errors import UserError
from tasks.model.load import Loaded
from tasks.secrets import binaries, check, fill, keys
from tasks.secrets.outcome import CHANGED, OK, WOULD_CHANGE, Outcome, Report
from tasks.secrets.sopscli import Sops
from tasks.secrets.store import Paths, parse_decrypted, recipients_of, write_atomic
from tasks.secrets.values import Inputs
from tasks.stack import sops as rules
from tasks.stack.context import context
from tasks.stack.render import parse_documents, render_text


@dataclass(frozen=True)
class Tools:
    key: keys.KeyFile
    keygen: str
    sops: Sops
    recipients: list[str]


def tools(loaded: Loaded, paths: Paths) -> Tools:
    """Key file (refused inside the repository), age-keygen, the pinned sops."""
    key = keys.locate(loaded)
    keys.refuse_inside(key, paths.root)
    keygen = binaries.age_keygen_binary()
    sops = Sops(binaries.checked_sops(loaded.data.versions.sops), key.path, paths.sops_config)
    return Tools(key, keygen, sops, list(loaded.data.secrets.age_recipients))


def _key_step(t: Tools, check_only: bool) -> tuple[Outcome, list[str]]:
    path, subject = t.key.path, f"age key {t.key.path}"
    if not path.exists():
        if check_only:
            return Outcome(WOULD_CHANGE, subject, "create it (age-keygen, mode 0600)"), []
        keys.create(path, t.keygen)
        public = keys.public_keys(path, t.keygen)
        return Outcome(CHANGED, subject, f"created (mode 0600, {t.key.source})",
                       tuple(f"public key: {k}" for k in public)), public
    public = keys.public_keys(path, t.keygen)
    notes = tuple(f"public key: {k}" for k in public)
    problem = keys.mode_problem(path)
    if problem and check_only:
        return Outcome(WOULD_CHANGE, subject, f"chmod 600 ({problem})", notes), public
    if problem:
        os.chmod(path, 0o600)
        return Outcome(CHANGED, subject, f"chmod 600 (was {problem})", notes), public
    return Outcome(OK, subject, f"exists ({t.key.source})", notes), public


def _config_step(paths: Paths, recipients: list[str], check_only: bool) -> Outcome:
    want = rules.creation_rules(recipients)
    config = paths.sops_config
    have = config.read_text() if config.is_file() else None
    subject = paths.rel(config)
    if have == want:
        return Outcome(OK, subject, f"recipients {', '.join(recipients)}")
    if check_only:
        return Outcome(WOULD_CHANGE, subject, f"write: recipients {', '.join(recipients)}")
    write_atomic(config, want.encode())
    return Outcome(CHANGED, subject, f"written: recipients {', '.join(recipients)}")


def init(loaded: Loaded, paths: Paths, inputs: Inputs, *, check_only: bool = False
         ) -> tuple[Report, str | None]:
    """The report, and why it stopped before the values (None when it did not)."""
    t = tools(loaded, paths)
    report = Report()
    key_outcome, public = _key_step(t, check_only)
    report.add(key_outcome)
    report.add(_config_step(paths, t.recipients, check_only))
    if public and not set(public) & set(t.recipients):
        return report, (f"your age public key {public[0]} is not in secrets.age_recipients:"
                        f" add it there ({loaded.path.name}), then run inv secrets.init"
                        " again to write the secrets (for keys you can decrypt)")
    decrypt = t.sops.decrypt if public else None
    plans, skipped = fill.plan_all(paths, context(loaded.data), decrypt, public)
    outcomes = fill.preview(plans) if check_only else fill.apply(plans, inputs, t.sops,
                                                                 t.recipients)
    for outcome in [*outcomes, *skipped]:
        report.add(outcome)
    return report, None


@contextmanager
def _work_copy(path: Path) -> Iterator[Path]:
    """A copy of ``path`` under the same name in a private directory beside it (so sops'
    creation rules match it and the result can be renamed over the original)."""
    tmp = Path(tempfile.mkdtemp(prefix=".stack-", dir=path.parent))
    try:
        shutil.copyfile(path, tmp / path.name)
        yield tmp / path.name
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _encrypted_text(path: Path, rel: str) -> str:
    text = path.read_text()
    problems = rules.encryption_problems(text, rel)
    if problems:
        raise UserError(problems[0], lines=[*problems, f"{rel}: not encrypted: encrypt or"
                                            " remove it first; nothing changed"])
    return text


def rotate(loaded: Loaded, paths: Paths, *, data_key: bool = False,
           check_only: bool = False) -> Report:
    """Re-encrypt every ``secrets/*.sops.yaml`` for the inventory's recipients
    (``sops updatekeys``: the same data key, re-wrapped), with a new data key
    (``sops --rotate``) when ``data_key`` or when a recipient was removed."""
    t = tools(loaded, paths)
    report = Report()
    report.add(_config_step(paths, t.recipients, check_only))
    want = set(t.recipients)
    files = rules.encrypted_files(paths.secrets_dir)
    texts = {p: _encrypted_text(p, paths.rel(p)) for p in files}  # all refused, or none
    for path, text in texts.items():
        have = set(recipients_of(text))
        added, removed = sorted(want - have), sorted(have - want)
        new_key = data_key or bool(removed)
        what = [*(f"+{k}" for k in added), *(f"-{k}" for k in removed),
                *(["new data key"] if new_key else [])]
        rel = paths.rel(path)
        if not what:
            report.add(Outcome(OK, rel, "encrypted for the inventory's recipients"))
            continue
        notes = ("a removed recipient could read these values until now: change them too"
                 f" (inv secrets.edit {rules.stem(path)})",) if removed else ()
        if check_only:
            report.add(Outcome(WOULD_CHANGE, rel, "re-encrypt: " + ", ".join(what), notes))
            continue
        with _work_copy(path) as copy:
            if have != want:
                t.sops.updatekeys(copy)
            data = t.sops.rotate(copy) if new_key else copy.read_bytes()
        result = data.decode(errors="replace")
        if rules.encryption_problems(result, rel) or set(recipients_of(result)) != want:
            raise UserError(f"{rel}: sops' output is not encrypted for exactly"
                            f" {', '.join(sorted(want))}; not written")
        write_atomic(path, data)
        report.add(Outcome(CHANGED, rel, "re-encrypted: " + ", ".join(what), notes))
    if not files:
        report.add(Outcome(OK, paths.rel(paths.secrets_dir), "no *.sops.yaml yet"))
    return report


def edit(loaded: Loaded, paths: Paths, name: str) -> Outcome:
    """``sops`` in $EDITOR on ``name``; saved only if the result is still encrypted and
    holds the Secrets (and keys) its template has."""
    stem = paths.name(name)
    path, rel = paths.encrypted(stem), paths.rel(paths.encrypted(stem))
    if not path.is_file():
        raise UserError(f"{rel}: missing: run inv secrets.init first")
    _encrypted_text(path, rel)
    t = tools(loaded, paths)
    if not t.key.path.is_file():
        raise UserError(f"age key file {t.key.path}: missing: copy your age key there (or"
                        " set secrets.age_key_file), or run inv secrets.init")
    expected = {}
    template = paths.template(stem)
    if template.is_file():
        docs = parse_documents(render_text(template, context(loaded.data)), rel)
        expected = {(d.namespace or "", d.name): list(d.obj.get("stringData") or {})
                    for d in docs}
    with _work_copy(path) as copy:
        if not t.sops.edit(copy):
            return Outcome(OK, rel, "unchanged (the editor saved no change)")
        text = copy.read_text()
        problems = rules.encryption_problems(text, rel)
        if not problems:
            problems = check.secret_problems(parse_decrypted(t.sops.decrypt(copy), rel),
                                             rel, expected)
        if problems:
            raise UserError(problems[0], lines=[*problems, f"{rel}: edit not saved: the"
                                                " file is unchanged"])
        write_atomic(path, text.encode())
    return Outcome(CHANGED, rel, "saved (still encrypted; its Secrets parse)")
