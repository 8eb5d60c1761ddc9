"""doctor's age key, secrets and charts checks, with the real sops and age-keygen."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from doctor_case import CANARY, Case, make_case
from secrets_repo import new_key

from tasks.doctor import files
from tasks.doctor.findings import Finding, Status, as_json, screen

FIX_KEY = ("run inv secrets.init (creates it), or copy your age key there (or set"
           " secrets.age_key_file)")
FIX_REENCRYPT = ("restore it from git if it was damaged; else re-encrypt it for your key"
                 " (inv secrets.rotate where a key can read it)")


@pytest.fixture
def case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    return make_case(tmp_path, monkeypatch)


def snapshot(top: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``top``: its mode and sha256 (to prove nothing was written)."""
    return {str(p.relative_to(top)): (p.stat().st_mode,
                                      hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(top.rglob("*")) if p.is_file()}


def key_and_secrets(case: Case) -> list[Finding]:
    finding, key = files.check_age_key(case.loaded(), case.root)
    return [finding, *files.check_secrets(case.loaded(), key, case.root)]


def test_a_healthy_key_decrypts_every_secret_in_memory(case: Case) -> None:
    before = snapshot(case.dir)
    got = key_and_secrets(case)
    assert got == [
        Finding("age key", Status.OK, f"{case.age_key} (secrets.age_key_file), mode 0600,"
                f" public key {case.public_key} (a recipient)"),
        Finding("secrets", Status.OK,
                "1 file(s) in secrets/ decrypt with the age key (in memory)"),
    ]
    assert snapshot(case.dir) == before  # nothing written, not even sops' output
    shown = "\n".join(screen(got)) + as_json(got)
    assert CANARY not in shown


def test_a_missing_key_fails_and_skips_the_secrets(case: Case) -> None:
    case.age_key.unlink()
    assert key_and_secrets(case) == [
        Finding("age key", Status.FAIL, f"{case.age_key} (secrets.age_key_file): missing",
                FIX_KEY),
        Finding("secrets", Status.SKIPPED, "no usable age key (see above)"),
    ]


def test_a_key_others_can_read_fails_with_chmod(case: Case) -> None:
    case.age_key.chmod(0o644)
    finding, key = files.check_age_key(case.loaded(), case.root)
    assert finding == Finding("age key", Status.FAIL, f"{case.age_key} (secrets.age_key_file):"
                              " mode 0644: others can read it", f"chmod 600 {case.age_key}")
    assert key is None
    assert case.age_key.stat().st_mode & 0o777 == 0o644  # told, not changed


def test_a_file_that_is_no_age_identity_fails(case: Case) -> None:
    case.age_key.write_text("not a key\n")
    finding, _ = files.check_age_key(case.loaded(), case.root)
    assert finding == Finding("age key", Status.FAIL, f"age key file {case.age_key}: not an"
                              " age identity file (age-keygen -y exit 1)",
                              "point secrets.age_key_file at your age key")


def test_a_key_inside_the_repository_is_refused(case: Case) -> None:
    inside = case.root / "keys.txt"
    case.age_key.rename(inside)
    case.age_key = inside
    case.write_inventory()
    finding, _ = files.check_age_key(case.loaded(), case.root)
    assert finding == Finding(
        "age key", Status.FAIL, f"age key file {inside} (secrets.age_key_file) is inside this"
        f" repository ({case.root})",
        "move it outside the repository and set secrets.age_key_file")


def test_another_key_cannot_decrypt(case: Case) -> None:
    case.age_key.unlink()
    other = new_key(case.age_key)
    case.age_key.chmod(0o600)
    assert key_and_secrets(case) == [
        Finding("age key", Status.WARN, f"{case.age_key} (secrets.age_key_file): public key"
                f" {other} is not in secrets.age_recipients, so new secrets are not encrypted"
                " for it", "add it to secrets.age_recipients, then inv secrets.rotate from a"
                " machine whose key is"),
        Finding("secret secret-doctor", Status.FAIL, "secrets/secret-doctor.sops.yaml:"
                f" decrypting secret-doctor.sops.yaml: the age key {case.age_key} cannot"
                " decrypt it (sops exit 128): its public key is not among the file's"
                " recipients; re-encrypt it with inv secrets.rotate from a machine whose key"
                " is, or set secrets.age_key_file", FIX_REENCRYPT),
    ]


def test_a_damaged_secret_file_fails_alone(case: Case) -> None:
    good = case.root / "secrets" / "secret-doctor.sops.yaml"
    text = good.read_text()
    start = text.index("ENC[") + len("ENC[AES256_GCM,data:")
    (case.root / "secrets" / "secret-broken.sops.yaml").write_text(
        text[:start] + ("A" if text[start] != "A" else "B") + text[start + 1:])
    got = key_and_secrets(case)
    assert [(f.check, f.status) for f in got] == [("age key", Status.OK),
                                                  ("secret secret-broken", Status.FAIL)]
    assert got[1] == Finding(
        "secret secret-broken", Status.FAIL, "secrets/secret-broken.sops.yaml: decrypting"
        " secret-broken.sops.yaml: sops exit 25: Error decrypting tree: Error walking tree:"
        " Could not decrypt value: Could not decrypt with AES_GCM: cipher: message"
        " authentication failed", FIX_REENCRYPT)


def test_no_secrets_yet_says_to_run_secrets_init(case: Case) -> None:
    (case.root / "secrets" / "secret-doctor.sops.yaml").unlink()
    assert key_and_secrets(case)[1] == Finding("secrets", Status.FAIL,
                                               "no secrets/*.sops.yaml yet",
                                               "run inv secrets.init")


def test_charts_pulled_with_their_locked_digests(case: Case) -> None:
    assert files.check_charts(case.loaded(), case.cache, case.lock) == [
        Finding("charts", Status.OK, f"6 charts in {case.cache} with the sha256 of {case.lock}")]


def test_a_missing_a_tampered_and_an_unlocked_chart_each_fail(case: Case) -> None:
    (case.cache / "loki-18.11.0.tgz").unlink()
    tampered = case.cache / "alloy-1.11.1.tgz"
    tampered.write_bytes(b"changed\n")
    digest = hashlib.sha256(b"changed\n").hexdigest()
    locked = hashlib.sha256(b"test stand-in archive of grafana/alloy 1.11.1\n").hexdigest()
    lines = case.lock.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "chart: flux2" in line)
    case.lock.write_text("\n".join(lines[:at] + lines[at + 5:]) + "\n")  # flux2 unlocked
    got = files.check_charts(case.loaded(), case.cache, case.lock)
    assert got == [
        Finding("chart flux2", Status.FAIL, "fluxcd-community/flux2 2.16.4"
                f" (https://fluxcd-community.github.io/helm-charts) is not in {case.lock}",
                "run inv charts.pull"),
        Finding("chart loki", Status.FAIL, f"{case.cache}/loki-18.11.0.tgz absent",
                "run inv charts.pull"),
        Finding("chart alloy", Status.FAIL, f"{tampered}: sha256 {digest} differs from"
                f" {case.lock} ({locked}): refused",
                f"delete {tampered}, then inv charts.pull"),
    ]
