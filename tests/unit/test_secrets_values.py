"""Generated values, the operator's inputs, where sops and the age key are found, and
what a child sops may see. No real sops here: stand-in scripts where a binary is needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.engine.errors import UserError
from tasks.model.fields import build
from tasks.model.load import Loaded
from tasks.model.model import Inventory
from tasks.secrets import binaries, keys, values
from tasks.secrets.sopscli import child_environment

BASE = {"domain": "example.com", "acme_email": "ops@example.com",
        "operators": ["203.0.113.10/32"],
        "hosts": [{"name": "vps1", "address": "203.0.113.20", "user": "admin",
                   "key_file": "id_test"}]}


@pytest.mark.parametrize(("description", "pattern"), [
    ("32 random bytes, hex", r"[0-9a-f]{64}"),
    ("24 random bytes, base64url", r"[A-Za-z0-9_-]{32}"),
    ("32 random bytes, base64url", r"[A-Za-z0-9_-]{43}"),
    ("32 random bytes, base64", r"[A-Za-z0-9+/]{43}="),
])
def test_generated_values_are_random_and_long(description: str, pattern: str) -> None:
    made = {values.generate(description) for _ in range(20)}
    assert len(made) == 20
    assert all(re.fullmatch(pattern, v) for v in made)


@pytest.mark.parametrize(("description", "problem"), [
    ("8 random bytes, hex", "<generate: 8 random bytes, hex>: at least 16 random bytes"),
    ("ed25519 SSH private key, OpenSSH format",
     "<generate: ed25519 SSH private key, OpenSSH format>: unknown generator (here: '<N>"
     " random bytes, base64|base64url|hex')"),
])
def test_weak_or_unknown_generators_are_refused(description: str, problem: str) -> None:
    assert values.generator_problem(description) == problem
    with pytest.raises(UserError, match="generate"):
        values.generate(description)


def test_input_variables_are_named_after_secret_and_key() -> None:
    assert values.env_name("app-config", "MONGODB_URI") == "STACK_SECRET_APP_CONFIG__MONGODB_URI"
    assert values.env_name("ghcr-pull", ".dockerconfigjson") == (
        "STACK_SECRET_GHCR_PULL__DOCKERCONFIGJSON")


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("MONGODB_URI", "mongodb+srv://u:p@h/db", None),
    ("MONGODB_URI", "postgres://u:p@h/db",
     "expected a URL starting with mongodb:// or mongodb+srv://"),
    ("REDIS_URL", "rediss://:p@h:6379", None),
    ("REDIS_URL", "  ", "empty"),
    (".dockerconfigjson", '{"auths": {"ghcr.io": {}}}', None),
    (".dockerconfigjson", "ghp_token", 'expected docker config JSON ({"auths": {"ghcr.io":'
                                       ' {...}}})'),
    (".dockerconfigjson", "[]", 'expected docker config JSON with an "auths" object'),
    ("OTHER", "two\nlines", "contains a control character (a newline?)"),
])
def test_inputs_are_checked_without_being_quoted(key: str, value: str,
                                                 problem: str | None) -> None:
    assert values.input_problem(key, value) == problem


def test_inputs_are_taken_out_of_the_environment() -> None:
    env = {"STACK_SECRET_A__B": "x", "HOME": "/root"}
    assert values.take_inputs_from_environment(env) == {"STACK_SECRET_A__B": "x"}
    assert env == {"HOME": "/root"}


def test_a_child_sops_gets_the_key_file_path_and_no_secret() -> None:
    env = child_environment(Path("/home/op/keys.txt"), base={
        "HOME": "/home/op", "SOPS_AGE_KEY": "AGE-SECRET-KEY-1X", "SOPS_AGE_KEY_CMD": "cat k",
        "SOPS_CONFIG": "/elsewhere", "SOPS_AGE_RECIPIENTS": "age1x",
        "STACK_SUDO_PASSWORD": "pw", "STACK_SECRET_APP__X": "v", "EDITOR": "vi"})
    assert env == {"HOME": "/home/op", "EDITOR": "vi",
                   "SOPS_AGE_KEY_FILE": "/home/op/keys.txt"}


def loaded(tmp_path: Path, **secrets: object) -> Loaded:
    inv, errors = build(Inventory, {**BASE, "secrets": secrets})
    assert errors == []
    return Loaded(inv, tmp_path / "inventory.yaml")


def test_the_key_file_is_the_inventory_s_then_the_variable_then_sops_default(
        tmp_path: Path) -> None:
    env = {"SOPS_AGE_KEY_FILE": "/keys/op.txt", "XDG_CONFIG_HOME": "/cfg"}
    assert keys.locate(loaded(tmp_path, age_key_file="keys/mine.txt"), env) == keys.KeyFile(
        tmp_path / "keys" / "mine.txt", "secrets.age_key_file")
    assert keys.locate(loaded(tmp_path), env) == keys.KeyFile(Path("/keys/op.txt"),
                                                             "$SOPS_AGE_KEY_FILE")
    assert keys.locate(loaded(tmp_path), {"XDG_CONFIG_HOME": "/cfg"}) == keys.KeyFile(
        Path("/cfg/sops/age/keys.txt"), "sops' default")
    home = Path.home()
    assert keys.locate(loaded(tmp_path), {}).path == home / ".config/sops/age/keys.txt"


def fake_sops(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sops"
    path.write_text(f"#!/bin/sh\necho 'sops {version}'\n")
    path.chmod(0o755)
    return path


def test_sops_is_found_through_the_variable_then_path(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = fake_sops(tmp_path / "path", "3.8.1")
    explicit = fake_sops(tmp_path / "explicit", "3.11.0")
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.delenv("STACK_SOPS", raising=False)
    assert binaries.sops_binary() == str(on_path)
    assert binaries.checked_sops("3.8.1") == str(on_path)
    monkeypatch.setenv("STACK_SOPS", str(explicit))
    assert binaries.checked_sops("3.11.0") == str(explicit)
    with pytest.raises(UserError) as err:
        binaries.checked_sops("3.8.1")
    assert err.value.lines == [
        f"{explicit} is sops 3.11.0 but the inventory pins versions.sops 3.8.1: install sops"
        " 3.8.1, or set versions.sops: 3.11.0 in the inventory (sops 3.x files are the same"
        " format)"]
    monkeypatch.setenv("STACK_SOPS", str(tmp_path / "nothing"))
    with pytest.raises(UserError, match=r"^\$STACK_SOPS=.*/nothing: not an executable file$"):
        binaries.sops_binary()


def test_something_else_than_sops_is_refused(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "sops"
    fake.write_text("#!/bin/sh\necho 'hello'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("STACK_SOPS", str(fake))
    with pytest.raises(UserError) as err:
        binaries.checked_sops("3.8.1")
    assert err.value.lines == [f"{fake}: not sops (`--version` printed 'hello', exit 0)"]
