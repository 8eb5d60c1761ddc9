"""Checks of local files: the age key and ``secrets/``, the pulled charts.

The age key is found where every secrets task finds it (:func:`tasks.secrets.keys.locate`)
and must be readable by its owner only and hold an age identity; then every
``secrets/*.sops.yaml`` is decrypted with it by the pinned sops, in memory: the output is
parsed and dropped, never written or printed. Charts: every chart the stack installs
must be in ``.cache/charts/`` with the digest ``charts.lock.yaml`` records, checked by
:func:`tasks.stack.charts.chart_archive`, the same function the installs call.
"""

from __future__ import annotations

from pathlib import Path

from tasks.doctor.findings import Finding, fail, ok, skipped, warn
from tasks.engine.errors import UserError
from tasks.model.load import Loaded
from tasks.secrets import binaries, keys
from tasks.secrets.sopscli import Sops
from tasks.secrets.store import Paths, parse_decrypted
from tasks.stack import charts
from tasks.stack import sops as rules
from tasks.stack.context import context
from tasks.tooling.lookup import shown

INIT = "run inv secrets.init"
PULL = "inv charts.pull"


def check_age_key(loaded: Loaded, root: Path) -> tuple[Finding, Path | None]:
    """The key file: present, 0600, an age identity (its path when usable)."""
    check = "age key"
    key = keys.locate(loaded)
    where = f"{key.path} ({key.source})"
    try:
        keys.refuse_inside(key, root)
    except UserError as exc:
        return fail(check, str(exc).split(": keep it outside")[0],
                    "move it outside the repository and set secrets.age_key_file"), None
    if not key.path.is_file():
        return fail(check, f"{where}: missing", f"{INIT} (creates it), or copy your age key"
                    " there (or set secrets.age_key_file)"), None
    problem = keys.mode_problem(key.path)
    if problem:
        return fail(check, f"{where}: {problem}", f"chmod 600 {key.path}"), None
    try:
        public = keys.public_keys(key.path, binaries.age_keygen_binary())
    except UserError as exc:
        return fail(check, str(exc).split("; point ")[0],
                    "point secrets.age_key_file at your age key"), None
    theirs = set(loaded.data.secrets.age_recipients)
    mine = [k for k in public if k in theirs]
    if not mine:
        return warn(check, f"{where}: public key {', '.join(public)} is not in"
                    " secrets.age_recipients, so new secrets are not encrypted for it",
                    "add it to secrets.age_recipients, then inv secrets.rotate from a"
                    " machine whose key is"), key.path
    return ok(check, f"{where}, mode 0600, public key {mine[0]} (a recipient)"), key.path


def check_secrets(loaded: Loaded, key_file: Path | None, root: Path) -> list[Finding]:
    """Every ``secrets/*.sops.yaml`` decrypts with the key (in memory, output dropped)."""
    paths = Paths(root)
    files = rules.encrypted_files(paths.secrets_dir)
    if key_file is None:
        return [skipped("secrets", "no usable age key (see above)")]
    if not files:
        return [fail("secrets", f"no {paths.rel(paths.secrets_dir)}/*.sops.yaml yet", INIT)]
    try:
        sops = Sops(binaries.checked_sops(loaded.data.versions.sops), key_file,
                    paths.sops_config)
    except UserError as exc:
        return [fail("secrets", str(exc), "run inv tools.install")]
    findings: list[Finding] = []
    for path in files:
        rel = paths.rel(path)
        try:
            parse_decrypted(sops.decrypt(path), rel)
        except UserError as exc:
            findings.append(fail(f"secret {rules.stem(path)}", f"{rel}: {exc}",
                                 "restore it from git if it was damaged; else re-encrypt it for"
                                 " your key (inv secrets.rotate where a key can read it)"))
    if not findings:
        findings.append(ok("secrets", f"{len(files)} file(s) in {paths.rel(paths.secrets_dir)}/"
                           " decrypt with the age key (in memory)"))
    return findings


def check_charts(loaded: Loaded, cache: Path = charts.CACHE,
                 lock: Path = charts.LOCK) -> list[Finding]:
    """Every pinned chart pulled, with its locked digest."""
    try:
        wanted = charts.pinned_charts(context(loaded.data))
    except UserError as exc:
        return [fail("charts", str(exc), "fix the versions in the inventory")]
    findings: list[Finding] = []
    for chart in wanted:
        try:
            charts.chart_archive(chart, cache=cache, lock=lock)
        except charts.ChartMissing as exc:
            findings.append(fail(f"chart {chart.chart}", str(exc).replace(f": run {PULL}", ""),
                                 f"run {PULL}"))
        except UserError as exc:
            findings.append(fail(f"chart {chart.chart}",
                                 str(exc).replace(f"; delete it and run {PULL}", ""),
                                 f"delete {shown(cache / chart.file_name)}, then {PULL}"))
    if not findings:
        findings.append(ok("charts", f"{len(wanted)} charts in {shown(cache)} with the sha256"
                           f" of {shown(lock)}"))
    return findings
