"""Bad inventory input is refused where it enters: one line, exit 2, no traceback.

YAML-level problems name ``file:line:column``; messages never echo user text raw.
Values refused by rules and cross-checks: test_inventory_refusals.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from inventory_text import (
    BASE,
    DOMAIN,
    NOT_A_KEY,
    REPO,
    ZONE,
    billion_laughs,
    inventory,
    refused,
    ssh_blob,
)

from tasks.engine.errors import InventoryError
from tasks.model import load


def test_the_base_inventory_loads(tmp_path: Path) -> None:
    assert load(inventory(tmp_path, BASE)).data.hosts[0].name == "vps1"


# 1. What used to be a traceback -------------------------------------------------------

def test_not_utf8_names_line_and_byte_offset(tmp_path: Path) -> None:
    text = BASE.encode() + b"# caf\xe9\n"
    assert refused(tmp_path, text) == [
        "inventory.yaml:6: not UTF-8 text: byte 0xe9 at offset 161 cannot be decoded"
        " (save the file as UTF-8)"]


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    text = BASE + "k3s: {tls_san: " + "[" * 10000 + "]" * 10000 + "}\n"
    assert refused(tmp_path, text) == [
        "inventory.yaml:6:64: nested more than 50 levels deep"]


def test_huge_integer_is_refused_not_a_value_error(tmp_path: Path) -> None:
    text = BASE.replace("key_file: id_test}", "key_file: id_test, port: "
                        + "9" * 5000 + "}")
    assert refused(tmp_path, text) == [
        "inventory.yaml:5:79: integer too long (5000 digits; at most 30)"]


def test_any_other_constructor_failure_is_one_line(tmp_path: Path) -> None:
    # PyYAML turns 2024-13-45 into a date: month 13 raised a ValueError traceback.
    assert refused(tmp_path, BASE + "domain2: 2024-13-45\n") == [
        "inventory.yaml:6:10: cannot read this value: month must be in 1..12"]


def test_last_net_any_exception_while_parsing(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.model import yaml_input

    def boom(self: object) -> object:
        raise RuntimeError("boom\n\x1b[2J")

    monkeypatch.setattr(yaml_input.InventoryLoader, "get_single_data", boom)
    assert refused(tmp_path, BASE) == [
        "inventory.yaml: cannot parse the YAML: RuntimeError: boom\\n\\x1b[2J"]


# 7. Size ------------------------------------------------------------------------------

def test_a_5mb_inventory_is_refused_for_its_size_quickly(tmp_path: Path) -> None:
    text = BASE + "# padding\n" * 524288
    start = time.monotonic()
    assert refused(tmp_path, text) == [
        "inventory.yaml: 5243036 bytes: too large for an inventory (the limit is 1 MiB,"
        " 1048576 bytes)"]
    assert time.monotonic() - start < 3


def test_just_under_the_limit_but_many_nodes_answers_quickly(tmp_path: Path) -> None:
    text = BASE + "extra_packages: [" + "a," * 500000 + "]\n"
    assert len(text.encode()) < 1048576
    start = time.monotonic()
    assert refused(tmp_path, text) == [
        "inventory.yaml:6:19976: too many YAML aliases/nodes (more than 10000 once"
        " aliases are expanded)"]
    assert time.monotonic() - start < 3


# 2. Alias bombs -----------------------------------------------------------------------

def test_billion_laughs_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    start = time.monotonic()
    assert refused(tmp_path, billion_laughs()) == [
        "inventory.yaml:10:10: too many YAML aliases/nodes (more than 10000 once"
        " aliases are expanded)"]
    assert time.monotonic() - start < 3


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path, BASE + "k3s: &k {tls_san: [*k]}\n") == [
        "inventory.yaml:6:20: a YAML alias to a node that contains it (a recursive"
        " structure)"]


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    text = BASE + "k3s: {tls_san: &names [a.example.com, b.example.com]}\n" \
        "apps: {host: api.example.com}\n"
    assert load(inventory(tmp_path, text)).data.k3s.tls_san == ["a.example.com",
                                                               "b.example.com"]


# 4. Duplicate keys --------------------------------------------------------------------

def test_duplicate_top_level_key_names_both_lines(tmp_path: Path) -> None:
    assert refused(tmp_path, BASE + "domain: example.org\n") == [
        'inventory.yaml:6:1: duplicate key "domain" (first on line 1)']


def test_duplicate_key_in_a_flow_mapping_is_escaped(tmp_path: Path) -> None:
    text = BASE.replace("user: admin,", 'user: admin, "us\\x1ber": x, "us\\x1ber": y,')
    assert refused(tmp_path, text) == [
        'inventory.yaml:5:69: duplicate key "us\\x1ber" (first on line 5)']


def test_merge_keys_may_override_without_being_duplicates(tmp_path: Path) -> None:
    text = BASE + "x-ssh: &ssh {port: 2222, connect_timeout: 5}\n" \
        "host: {ssh: {<<: *ssh, port: 2200}}\n"
    lines = refused(tmp_path, text)  # x-ssh is an unknown key, nothing else
    assert lines == ['inventory.yaml: x-ssh: unknown key (known keys: acme_email, apps, backup,'
                     ' certs, domain, gitops, host, hosts, k3s, kafka, monitoring, operators,'
                     ' secrets, versions)']


def test_yaml_still_gives_line_and_column_for_syntax_errors(tmp_path: Path) -> None:
    assert refused(tmp_path, "domain: [unclosed\n")[0].startswith(
        "inventory.yaml:2:1: invalid YAML: ")


def test_raw_control_character_names_its_line(tmp_path: Path) -> None:
    # PyYAML's reader refuses it without a line (a ReaderError has only a position).
    assert refused(tmp_path, BASE + "# \x1b[2J\n") == [
        "inventory.yaml:6:3: invalid YAML: unacceptable character #x001b: special"
        " characters are not allowed"]


def test_loader_is_safe(tmp_path: Path) -> None:
    text = BASE + "domain2: !!python/object/apply:os.system [echo hi]\n"
    assert refused(tmp_path, text) == [
        "inventory.yaml:6:10: invalid YAML: could not determine a constructor for the tag"
        " 'tag:yaml.org,2002:python/object/apply:os.system'"]
    from tasks.model import yaml_input

    assert yaml_input.InventoryLoader.__mro__[1] is yaml.SafeLoader


# 2. Messages never echo user text raw -------------------------------------------------

KNOWN_HOST_KEYS = ("(known keys: address, internal_address, key_file, name, port, role,"
                   " ssh_forwards, user)")


@pytest.mark.parametrize(("extra", "expected"), [
    ('"col\\x1b[31mour\\n": 1\n',
     'inventory.yaml: "col\\x1b[31mour\\n": unknown key (known keys: acme_email, apps, backup,'
     ' certs, domain, gitops, host, hosts, k3s, kafka, monitoring, operators, secrets, versions)'),
    ("k" * 100 + ": 1\n",
     'inventory.yaml: "' + "k" * 60 + '"...: unknown key (known keys: acme_email, apps,'
     ' backup, certs, domain, gitops, host, hosts, k3s, kafka, monitoring, operators, secrets,'
     ' versions)'),
    ("~: 1\n", "inventory.yaml: null: unknown key (known keys: acme_email, apps, backup,"
     " certs, domain, gitops, host, hosts, k3s, kafka, monitoring, operators, secrets, versions)"),
])
def test_unknown_keys_are_escaped_and_cut(tmp_path: Path, extra: str, expected: str) -> None:
    assert refused(tmp_path, BASE + extra) == [expected]


def test_unknown_key_in_a_host_is_escaped(tmp_path: Path) -> None:
    text = BASE.replace("user: admin,", 'user: admin, "na\\u202eme": x,')
    assert refused(tmp_path, text) == [
        f'inventory.yaml: hosts[0]."na\\u202eme": unknown key {KNOWN_HOST_KEYS}']


@pytest.mark.parametrize(("value", "expected"), [
    ('"a\\x1bb\\nc"', 'got "a\\x1bb\\nc"'),
    ('"' + "x" * 5000 + '"', 'got "' + "x" * 60 + '"...'),
    ("{a: 1, b: [true, null, 1.5]}", 'got {"a": 1, "b": [true, null, 1.5]}'),
    ("[" + ", ".join(["abcdefghij"] * 20) + "]",
     'got ["abcdefghij", "abcdefghij", "abcdefghij", "abcdefghij", "ab...'),
])
def test_bad_values_are_escaped_and_cut(tmp_path: Path, value: str, expected: str) -> None:
    text = BASE.replace("domain: example.com", f"domain: {value}")
    assert refused(tmp_path, text) == [
        f"inventory.yaml: domain: {DOMAIN}, {expected}"]


def test_aliases_are_never_expanded_into_a_huge_message(tmp_path: Path) -> None:
    ten = "x-ten: &x [" + ", ".join(["aaaaaaaaaa"] * 100) + "]\n"
    text = BASE.replace("domain: example.com\n",
                        ten + "domain: [" + ", ".join(["*x"] * 90) + "]\n")
    lines = refused(tmp_path, text)
    assert (f"inventory.yaml: domain: {DOMAIN},"
            ' got [["aaaaaaaaaa", "aaaaaaaaaa", "aaaaaaaaaa", "aaaaaaaaaa", "a...') in lines
    assert max(len(line) for line in lines) < 300


def test_literal_choices_are_escaped(tmp_path: Path) -> None:
    text = BASE.replace("user: admin,", 'user: admin, role: "ser\\u202ever",')
    assert refused(tmp_path, text) == [
        'inventory.yaml: hosts[0].role: expected one of "server", "agent", got'
        ' "ser\\u202ever"']


def test_unknown_host_name_from_the_command_line_is_escaped(tmp_path: Path) -> None:
    loaded = load(inventory(tmp_path, BASE))
    with pytest.raises(InventoryError) as info:
        loaded.host("vps\n\x1b[2J" + "y" * 80)
    assert info.value.lines == [
        'inventory.yaml: no host named "vps\\n\\x1b[2J' + "y" * 52 + '"... (hosts: vps1)']


def test_show_directly() -> None:
    from tasks.model.fields import show

    assert show("tab\there") == '"tab\\there"'
    assert show('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert show(10 ** 5000) == "an integer of 16610 bits"
    recursive: list[object] = []
    recursive.append(recursive)
    assert show(recursive) == "[" * 60 + "..."


# The real command line: exit 2, one error line naming the file, no traceback ----------

@pytest.mark.parametrize(("text", "expected"), [
    (BASE.encode() + b"# caf\xe9\n",
     "error: bad.yaml:6: not UTF-8 text: byte 0xe9 at offset 161 cannot be decoded (save"
     " the file as UTF-8)"),
    ((BASE + "k3s: {tls_san: " + "[" * 10000 + "]" * 10000 + "}\n").encode(),
     "error: bad.yaml:6:64: nested more than 50 levels deep"),
    (BASE.replace("id_test}", "id_test, port: " + "9" * 5000 + "}").encode(),
     "error: bad.yaml:5:79: integer too long (5000 digits; at most 30)"),
    (billion_laughs().encode(),
     "error: bad.yaml:10:10: too many YAML aliases/nodes (more than 10000 once aliases are"
     " expanded)"),
    (BASE.replace("203.0.113.20", "'fe80::1%eth0'").encode(),
     f'error: bad.yaml: hosts[0].address: "fe80::1%eth0" {ZONE}'),
    ((BASE + "domain: example.org\n").encode(),
     'error: bad.yaml:6:1: duplicate key "domain" (first on line 1)'),
    ((BASE + "# padding\n" * 524288).encode(),
     "error: bad.yaml: 5243036 bytes: too large for an inventory (the limit is 1 MiB,"
     " 1048576 bytes)"),
])
def test_cli_refuses_with_one_line(tmp_path: Path, text: bytes, expected: str) -> None:
    path = inventory(tmp_path, text, "bad.yaml")
    proc = subprocess.run([sys.executable, "-m", "invoke", "inventory.check", "-i", str(path)],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [expected]
    assert proc.stdout == ""


def test_cli_refuses_a_public_key_before_connecting(tmp_path: Path) -> None:
    path = inventory(tmp_path, BASE.replace("key_file: id_test", "key_file: id_test.pub"),
                     "bad.yaml")
    (tmp_path / "id_test.pub").write_text(f"ssh-ed25519 {ssh_blob('ssh-ed25519')} me@here\n")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "invoke", "host.harden", "-i", str(path)],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: bad.yaml: hosts[0].key_file: {tmp_path}/id_test.pub {NOT_A_KEY}"]
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - start < 8  # no SSH attempt to 203.0.113.20 (10 s timeout)
