"""secrets.check and the pre-commit hook: no secret in clear where git can see it.

The check reads text only (no sops): encrypted files here are sops-shaped fixtures.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from tasks import secrets_tasks
from tasks.engine.errors import UserError
from tasks.model.model import SPEC_AGE_RECIPIENT
from tasks.repo import REPO_ROOT
from tasks.secrets import check, hook
from tasks.secrets.store import Paths
from tasks.stack import sops as rules

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

OTHER = "age1" + "q" * 58
FILLED = ["secret-app", "secret-grafana", "secret-k3s", "secret-kafka", "secret-registry"]


def encrypted(name: str, recipient: str = SPEC_AGE_RECIPIENT) -> str:
    return f"""\
apiVersion: v1
kind: Secret
metadata:
    name: {name}
    namespace: app
stringData:
    password: ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]
sops:
    age:
        - recipient: {recipient}
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            -----END AGE ENCRYPTED FILE-----
    lastmodified: "2026-01-01T00:00:00Z"
    mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
    encrypted_regex: ^(data|stringData)$
    version: 3.11.0
"""


CLEAR_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: app
stringData:
  password: hunter2-in-clear
  empty: ""
  url: "<input: a placeholder is no value>"
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean repository: every template encrypted, .sops.yaml from the recipients."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")  # no hooksPath etc. from outside
    root = tmp_path / "repo"
    (root / "secrets").mkdir(parents=True)
    for template in (REPO_ROOT / "secrets").glob("*.template.yaml"):
        shutil.copy(template, root / "secrets" / template.name)
    for name in FILLED:
        (root / "secrets" / f"{name}.sops.yaml").write_text(encrypted(name))
    shutil.copy(REPO_ROOT / ".gitignore", root / ".gitignore")
    (root / ".sops.yaml").write_text(rules.creation_rules([SPEC_AGE_RECIPIENT]))
    git(tmp_path, "init", "-q", str(root))
    git(root, "add", ".")
    monkeypatch.setattr(secrets_tasks, "ROOT", root)
    return root


def problems(root: Path) -> list[str]:
    found, notes = check.repository_problems(Paths(root), [SPEC_AGE_RECIPIENT])
    assert notes == ["secrets/secret-flux.sops.yaml: not written yet (flux.bootstrap"
                     " writes it)"]
    return found


def test_a_clean_repository_passes(root: Path) -> None:
    assert problems(root) == []
    assert check.staged_problems(root) == ([], [])


def test_a_missing_encrypted_file_is_named(root: Path) -> None:
    (root / "secrets" / "secret-k3s.sops.yaml").unlink()
    assert problems(root) == [
        "secrets/secret-k3s.sops.yaml: missing (its template is"
        " secrets/secret-k3s.template.yaml): run inv secrets.init"]


def test_an_unencrypted_sops_file_is_found(root: Path) -> None:
    (root / "secrets" / "secret-app.sops.yaml").write_text(CLEAR_SECRET)
    assert problems(root) == [
        "secrets/secret-app.sops.yaml: Secret db: sops: missing or without age recipients"
        " and MAC: not encrypted with `sops --encrypt`",
        "secrets/secret-app.sops.yaml: Secret db: stringData.password: plaintext value"
        " (must be ENC[AES256_GCM,...])",
        "secrets/secret-app.sops.yaml: Secret db: stringData.empty: plaintext value (must"
        " be ENC[AES256_GCM,...])",
        "secrets/secret-app.sops.yaml: Secret db: stringData.url: plaintext value (must be"
        " ENC[AES256_GCM,...])"]


def test_plaintext_tracked_by_git_is_found(root: Path) -> None:
    (root / "secrets" / "app.dec.yaml").write_text(CLEAR_SECRET)
    (root / "keys.txt").write_text("AGE-SECRET-KEY-1...\n")
    (root / "manifests").mkdir()
    (root / "manifests" / "db.yaml").write_text(CLEAR_SECRET)
    (root / "manifests" / "chart.yaml").write_text(  # templated values are no values
        CLEAR_SECRET.replace("hunter2-in-clear", "'{{ .Values.password }}'"))
    git(root, "add", "-f", "secrets/app.dec.yaml", "keys.txt", "manifests")
    assert problems(root) == [
        "keys.txt: tracked by git, but .gitignore keeps files like it out (a key, a"
        " kubeconfig, a plaintext secret?): git rm --cached keys.txt",
        "secrets/app.dec.yaml: tracked by git, but .gitignore keeps files like it out (a"
        " key, a kubeconfig, a plaintext secret?): git rm --cached secrets/app.dec.yaml",
        "manifests/db.yaml: Secret app/db: stringData.password: a value in clear; keep it"
        " encrypted in secrets/*.sops.yaml (inv secrets.init, inv secrets.edit)",
        "secrets/app.dec.yaml: Secret app/db: stringData.password: a value in clear; keep"
        " it encrypted in secrets/*.sops.yaml (inv secrets.init, inv secrets.edit)"]


def test_stale_recipients_and_config_are_found(root: Path) -> None:
    found, _ = check.repository_problems(Paths(root), [SPEC_AGE_RECIPIENT, OTHER])
    assert found[0] == (".sops.yaml: does not list the inventory's secrets.age_recipients:"
                        " run inv secrets.init")
    assert found[1] == (f"secrets/secret-app.sops.yaml: encrypted for {SPEC_AGE_RECIPIENT},"
                        f" but secrets.age_recipients lists {SPEC_AGE_RECIPIENT}, {OTHER}:"
                        " run inv secrets.rotate")
    assert len(found) == 1 + len(FILLED)


def test_staged_mode_reads_what_the_commit_would_add(root: Path) -> None:
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    assert check.staged_problems(root) == ([], [])
    db = root / "manifests" / "db.yaml"
    db.parent.mkdir()
    db.write_text(CLEAR_SECRET)
    assert check.staged_problems(root) == ([], [])  # not staged: not the commit's
    git(root, "add", "manifests/db.yaml")
    db.write_text("# fixed in the working tree only\n")  # the index still has it
    (root / "secrets" / "secret-k3s.sops.yaml").write_text(CLEAR_SECRET)
    git(root, "add", "secrets/secret-k3s.sops.yaml")
    (root / "kubeconfig").write_text("apiVersion: v1\n")
    git(root, "add", "-f", "kubeconfig")
    found, _ = check.staged_problems(root)
    assert found[0] == ("kubeconfig: staged, but .gitignore keeps files like it out (a"
                        " key, a kubeconfig, a plaintext secret?): git rm --cached kubeconfig")
    assert found[1] == ("manifests/db.yaml: Secret app/db: stringData.password: a value in"
                        " clear; keep it encrypted in secrets/*.sops.yaml (inv secrets.init,"
                        " inv secrets.edit)")
    assert found[2] == ("secrets/secret-k3s.sops.yaml: Secret db: sops: missing or without"
                        " age recipients and MAC: not encrypted with `sops --encrypt`")
    assert len(found) == 6


def test_task_exits_1_with_one_line_per_problem(root: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (root / "secrets" / "app.plain.yaml").write_text(CLEAR_SECRET)
    git(root, "add", "-f", "secrets/app.plain.yaml")
    with pytest.raises(Exit) as exit_:
        secrets_tasks.check(Context(), staged=True)
    assert exit_.value.code == 1
    assert capsys.readouterr().out.splitlines() == [
        "secrets/app.plain.yaml: staged, but .gitignore keeps files like it out (a key, a"
        " kubeconfig, a plaintext secret?): git rm --cached secrets/app.plain.yaml",
        "secrets/app.plain.yaml: Secret app/db: stringData.password: a value in clear; keep"
        " it encrypted in secrets/*.sops.yaml (inv secrets.init, inv secrets.edit)",
        "secrets.check: 2 problem(s)"]
    git(root, "rm", "-q", "--cached", "secrets/app.plain.yaml")
    secrets_tasks.check(Context(), staged=True)
    assert capsys.readouterr().out == "secrets.check: no secret in clear staged\n"


def install_script(root: Path) -> None:
    (root / ".githooks").mkdir()
    shutil.copy(REPO_ROOT / hook.SCRIPT, root / hook.SCRIPT)


def test_hook_install_is_idempotent_and_keeps_a_foreign_hook(root: Path) -> None:
    install_script(root)
    target = root / ".git" / "hooks" / "pre-commit"
    assert hook.install(root, check=True).lines() == [
        f"would change {target}: install (runs .githooks/pre-commit)"]
    assert not target.exists()
    assert hook.install(root).lines() == [
        f"changed      {target}: installed (runs .githooks/pre-commit)"]
    assert target.read_text() == (
        "#!/bin/sh\n"
        "# Installed by `inv secrets.hook`: runs the checkout's .githooks/pre-commit.\n"
        'script="$(git rev-parse --show-toplevel)/.githooks/pre-commit"\n'
        'if [ ! -x "$script" ]; then\n'
        '  echo "pre-commit: no .githooks/pre-commit in this checkout: secrets not'
        ' checked" >&2\n'
        "  exit 0\n"
        "fi\n"
        'exec "$script" "$@"\n')
    assert hook.install(root).lines() == [f"ok           {target}: runs .githooks/pre-commit"]
    target.write_text("#!/bin/sh\nmy-own-checks\n")
    with pytest.raises(UserError) as err:
        hook.install(root)
    assert err.value.lines == [f"{target}: another pre-commit hook is there: add a line"
                               " running .githooks/pre-commit to it, or pass --force to"
                               " replace it"]
    assert hook.install(root, force=True).status == "changed"


def test_a_shared_hooks_path_is_left_alone(root: Path, tmp_path: Path) -> None:
    install_script(root)
    git(root, "config", "core.hooksPath", str(tmp_path / "shared-hooks"))
    with pytest.raises(UserError) as err:
        hook.install(root)
    assert err.value.lines == [
        f"core.hooksPath is {tmp_path / 'shared-hooks'}, outside this repository (other"
        " repositories use it too): run .githooks/pre-commit from your pre-commit hook"
        " there instead"]
    assert not (tmp_path / "shared-hooks").exists()


@pytest.mark.parametrize(("verdict", "committed"), [(1, False), (0, True)])
def test_git_commit_runs_secrets_check_staged(root: Path, verdict: int,
                                              committed: bool) -> None:
    """The installed hook runs the script, which runs `inv secrets.check --staged` with
    the checkout's .venv (a stand-in here that logs its argv and gives a verdict)."""
    install_script(root)
    hook.install(root)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$PWD $*" > ../hook.log\nexit {verdict}\n')
    python.chmod(0o755)
    proc = subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t",
                           "commit", "-qm", "x"], cwd=root / "secrets", capture_output=True,
                          text=True, check=False)
    assert (proc.returncode == 0) is committed
    assert (root.parent / "hook.log").read_text() == f"{root} -m invoke secrets.check --staged\n"
