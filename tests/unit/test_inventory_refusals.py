"""Inventory values that would open the host, and local files a connecting task needs.

Each refusal is one line naming the file and the field, before any connection.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import yaml
from inventory_text import (
    BASE,
    DOMAIN,
    NOT_A_KEY,
    OPENSSH_HEADER,
    ZONE,
    inventory,
    refused,
    ssh_blob,
)

from tasks.engine.errors import InventoryError
from tasks.model import load

# 3. What would open the host ----------------------------------------------------------

TOO_WIDE = ("is too wide (at most /16 for IPv4, /48 for IPv6): every address in the operator"
            " allow-list gets SSH without rate limit and the Kubernetes API")
NOT_PRIVATE = ("is not a private network (inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,"
               " 100.64.0.0/10 or fc00::/7): the firewall allows everything from the pod"
               " and service networks")


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("address: 203.0.113.20", "address: fe80::1%eth0",
     f'hosts[0].address: "fe80::1%eth0" {ZONE}'),
    ("address: 203.0.113.20", "address: 203.0.113.20, internal_address: 'fe80::1%x'",
     f'hosts[0].internal_address: "fe80::1%x" {ZONE}'),
    ("[203.0.113.10/32]", "['fe80::%1/64']", f'operators[0]: "fe80::%1/64" {ZONE}'),
    ("[203.0.113.10/32]", "[0.0.0.0/0]", f'operators[0]: "0.0.0.0/0" {TOO_WIDE}'),
    ("[203.0.113.10/32]", "['::/0']", f'operators[0]: "::/0" {TOO_WIDE}'),
    ("[203.0.113.10/32]", "[203.0.113.10/32, 10.0.0.0/8]",
     f'operators[1]: "10.0.0.0/8" {TOO_WIDE}'),
    ("[203.0.113.10/32]", "['2001:db8::/32']", f'operators[0]: "2001:db8::/32" {TOO_WIDE}'),
    ("user: admin", "user: root",
     'hosts[0].user: "root" cannot log in once host.harden has set PermitRootLogin no, so'
     " the next run would be locked out: create a sudo user first (adduser admin &&"
     " usermod -aG sudo admin, then copy your key to /home/admin/.ssh/authorized_keys)"
     " and use it here"),
])
def test_refused_values(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert refused(tmp_path, BASE.replace(old, new)) == [f"inventory.yaml: {expected}"]


@pytest.mark.parametrize(("extra", "expected"), [
    ("k3s: {tls_san: ['fe80::1%x']}", f'k3s.tls_san[0]: "fe80::1%x" {ZONE}'),
    ("k3s: {pod_cidr: 8.8.0.0/16}", f'k3s.pod_cidr: "8.8.0.0/16" {NOT_PRIVATE}'),
    ("k3s: {pod_cidr: 0.0.0.0/0}", f'k3s.pod_cidr: "0.0.0.0/0" {NOT_PRIVATE}'),
    ("k3s: {service_cidr: '2001:db8::/112'}",
     f'k3s.service_cidr: "2001:db8::/112" {NOT_PRIVATE}'),
    ("k3s: {service_cidr: 'fd00::%x/112'}", f'k3s.service_cidr: "fd00::%x/112" {ZONE}'),
])
def test_refused_k3s_values(tmp_path: Path, extra: str, expected: str) -> None:
    assert refused(tmp_path, BASE + extra + "\n") == [f"inventory.yaml: {expected}"]


def test_sane_networks_are_accepted(tmp_path: Path) -> None:
    text = BASE.replace("[203.0.113.10/32]", "[10.1.0.0/16, '2001:db8:1::/48']") + (
        "k3s: {pod_cidr: 100.64.0.0/16, service_cidr: 'fd00:43::/112',"
        " tls_san: ['2001:db8::1']}\n")
    inv = load(inventory(tmp_path, text)).data
    assert (inv.k3s.pod_cidr, inv.operators) == ("100.64.0.0/16",
                                                 ["10.1.0.0/16", "2001:db8:1::/48"])


NOT_TO_THE_WORLD = "; it must never be open to the world"


@pytest.mark.parametrize(("extra", "expected"), [
    ("host: {firewall: {open_tcp: [80, 443, 6443]}}",
     "host.firewall.open_tcp[2]: 6443 is the Kubernetes API (host.firewall.api_port), open"
     " only to operators and nodes" + NOT_TO_THE_WORLD),
    ("host: {firewall: {api_port: 7443, open_tcp: [7443]}}",
     "host.firewall.open_tcp[0]: 7443 is the Kubernetes API (host.firewall.api_port), open"
     " only to operators and nodes" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [10250]}}",
     "host.firewall.open_tcp[0]: 10250 is the kubelet API" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [2379]}}",
     "host.firewall.open_tcp[0]: 2379 is etcd (clients)" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [2380]}}",
     "host.firewall.open_tcp[0]: 2380 is etcd (peers)" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [10257]}}",
     "host.firewall.open_tcp[0]: 10257 is the controller manager" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [10259]}}",
     "host.firewall.open_tcp[0]: 10259 is the scheduler" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [10249]}}",
     "host.firewall.open_tcp[0]: 10249 is kube-proxy (metrics)" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [10256]}}",
     "host.firewall.open_tcp[0]: 10256 is kube-proxy (health check)" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [9100]}}",
     "host.firewall.open_tcp[0]: 9100 is node-exporter" + NOT_TO_THE_WORLD),
    ("host: {firewall: {open_tcp: [22]}}",
     "host.firewall.open_tcp[0]: 22 is SSH (host.ssh.port), which has its own rules;"
     " opening it here would bypass the rate limit and the operator allow-list"),
    ("host: {ssh: {port: 2222}, firewall: {open_tcp: [443, 2222]}}",
     "host.firewall.open_tcp[1]: 2222 is SSH (host.ssh.port), which has its own rules;"
     " opening it here would bypass the rate limit and the operator allow-list"),
    ("apps: {namespace: default}",
     'apps.namespace: "default" is a Kubernetes system namespace; give the applications'
     " their own"),
    ("apps: {namespace: kube-public}",
     'apps.namespace: "kube-public" is a Kubernetes system namespace; give the'
     " applications their own"),
    ("apps: {namespace: kube-node-lease}",
     'apps.namespace: "kube-node-lease" is a Kubernetes system namespace; give the'
     " applications their own"),
    ("apps: {namespace: kube-anything}",
     'apps.namespace: "kube-anything" is a Kubernetes system namespace; give the'
     " applications their own"),
    ("apps: {namespace: kube-system}",
     'apps.namespace: "kube-system" is a Kubernetes system namespace; give the'
     " applications their own"),
    ("apps: {namespace: flux-system}",
     'apps.namespace: "flux-system" is already used by Flux; give the applications'
     " their own"),
    ("kafka: {namespace: default}",
     'kafka.namespace: "default" is a system namespace; give Kafka its own'),
    ("kafka: {namespace: kube-node-lease}",
     'kafka.namespace: "kube-node-lease" is a system namespace; give Kafka its own'),
    ("kafka: {namespace: monitoring}",
     'kafka.namespace: "monitoring" is a system namespace; give Kafka its own'),
])
def test_refused_cross_checks(tmp_path: Path, extra: str, expected: str) -> None:
    assert refused(tmp_path, BASE + extra + "\n") == [f"inventory.yaml: {expected}"]


def test_ports_that_are_fine_to_open(tmp_path: Path) -> None:
    text = BASE + "host: {ssh: {port: 2222}, firewall: {open_tcp: [22, 80, 443, 6443, 8443]," \
        " api_port: 16443}}\n"
    assert load(inventory(tmp_path, text)).data.host.firewall.open_tcp == [22, 80, 443, 6443,
                                                                          8443]


# Every string that reaches a file or a command has a rule ------------------------------

DATA_DIR = ("expected an absolute path of letters, digits, '.', '_', '-' and '/' (no '..',"
            " not /, at most 255 characters)")
BRANCH = ("expected a git branch name such as main or release/1.2 (letters, digits,"
          " '.', '_', '+', '@', '-' and '/'; no '..', at most 255 characters)")
GIT_URL = ("expected a git URL (ssh://git@host/owner/repo or https://host/owner/repo;"
           " letters, digits and ._~+-/ only, at most 512 characters)")
FILE_PATH = "expected a file path (no control characters, at most 4096 characters)"
LONG_DOMAIN = ("a" * 63 + ".") * 4 + "com"


@pytest.mark.parametrize(("extra", "expected"), [
    ("k3s: {data_dir: var/lib/k3s}", f'k3s.data_dir: {DATA_DIR}, got "var/lib/k3s"'),
    ("k3s: {data_dir: /}", f'k3s.data_dir: {DATA_DIR}, got "/"'),
    ("k3s: {data_dir: /var/lib/../../etc}",
     f'k3s.data_dir: {DATA_DIR}, got "/var/lib/../../etc"'),
    ("k3s: {data_dir: /var/./k3s}", f'k3s.data_dir: {DATA_DIR}, got "/var/./k3s"'),
    ("k3s: {data_dir: '/var/lib/k3s; rm -rf /'}",
     f'k3s.data_dir: {DATA_DIR}, got "/var/lib/k3s; rm -rf /"'),
    ("k3s: {data_dir: '/var//k3s'}", f'k3s.data_dir: {DATA_DIR}, got "/var//k3s"'),
    ("k3s: {data_dir: /" + "a" * 300 + "}",
     f'k3s.data_dir: {DATA_DIR}, got "/' + "a" * 59 + '"...'),
    ("gitops: {branch: -f}", f'gitops.branch: {BRANCH}, got "-f"'),
    ("gitops: {branch: a..b}", f'gitops.branch: {BRANCH}, got "a..b"'),
    ("gitops: {branch: 'a b'}", f'gitops.branch: {BRANCH}, got "a b"'),
    ("gitops: {branch: 'main~1'}", f'gitops.branch: {BRANCH}, got "main~1"'),
    ("gitops: {branch: 'x^'}", f'gitops.branch: {BRANCH}, got "x^"'),
    ("gitops: {branch: 'a:b'}", f'gitops.branch: {BRANCH}, got "a:b"'),
    ("gitops: {branch: 'a?*['}", f'gitops.branch: {BRANCH}, got "a?*["'),
    ("gitops: {branch: 'a\\b'}", f'gitops.branch: {BRANCH}, got "a\\\\b"'),
    ('gitops: {branch: "ma\\x1bin"}', f'gitops.branch: {BRANCH}, got "ma\\x1bin"'),
    ("gitops: {branch: feature/x.lock}", f'gitops.branch: {BRANCH}, got "feature/x.lock"'),
    ("gitops: {branch: release/}", f'gitops.branch: {BRANCH}, got "release/"'),
    ("gitops: {branch: release.}", f'gitops.branch: {BRANCH}, got "release."'),
    ("gitops: {branch: a//b}", f'gitops.branch: {BRANCH}, got "a//b"'),
    ("gitops: {branch: .hidden}", f'gitops.branch: {BRANCH}, got ".hidden"'),
    ("gitops: {branch: '@'}", f'gitops.branch: {BRANCH}, got "@"'),
    ("gitops: {branch: " + "b" * 256 + "}", f'gitops.branch: {BRANCH}, got "' + "b" * 60
     + '"...'),
    ("gitops: {repository: \"https://github.com/x/y'\"}",
     f"gitops.repository: {GIT_URL}, got \"https://github.com/x/y'\""),
    ('gitops: {repository: "https://github.com/x/$(id)"}',
     f'gitops.repository: {GIT_URL}, got "https://github.com/x/$(id)"'),
    ('gitops: {repository: "https://github.com/x/`id`"}',
     f'gitops.repository: {GIT_URL}, got "https://github.com/x/`id`"'),
    ('gitops: {repository: "https://github.com/x/y\\\\z"}',
     f'gitops.repository: {GIT_URL}, got "https://github.com/x/y\\\\z"'),
    ('gitops: {repository: "https://github.com/x/y\\tz"}',
     f'gitops.repository: {GIT_URL}, got "https://github.com/x/y\\tz"'),
    ('gitops: {repository: "https://github.com/x/\\"y"}',
     f'gitops.repository: {GIT_URL}, got "https://github.com/x/\\"y"'),
    ("gitops: {repository: https://github.com/" + "r" * 500 + "}",
     f'gitops.repository: {GIT_URL}, got "https://github.com/' + "r" * 41 + '"...'),
    ('host: {ssh: {known_hosts: "kh\\n"}}', f'host.ssh.known_hosts: {FILE_PATH}, got "kh\\n"'),
    ("host: {ssh: {known_hosts: ''}}", f'host.ssh.known_hosts: {FILE_PATH}, got ""'),
    (f"domain: {LONG_DOMAIN}", f'domain: {DOMAIN}, got "' + LONG_DOMAIN[:60] + '"...'),
    (f"apps: {{host: {LONG_DOMAIN}}}",
     f'apps.host: {DOMAIN}, got "' + LONG_DOMAIN[:60] + '"...'),
    (f"k3s: {{tls_san: [{LONG_DOMAIN}]}}", "k3s.tls_san[0]: expected an IP address or DNS"
     ' name (at most 253 characters), got "' + LONG_DOMAIN[:60] + '"...'),
    ("acme_email: " + "o" * 64 + "@" + ("e" * 63 + ".") * 3 + "com",
     "acme_email: expected an e-mail address (at most 254 characters), got \""
     + "o" * 60 + '"...'),
    ('acme_email: "o\\x1bps@example.com"', "acme_email: expected an e-mail address (at most"
     ' 254 characters), got "o\\x1bps@example.com"'),
])
def test_strings_that_reach_files_and_commands(tmp_path: Path, extra: str,
                                               expected: str) -> None:
    text = BASE.replace("domain: example.com\n", "").replace("acme_email: ops@example.com\n",
                                                             "")
    if not extra.startswith("domain:"):
        text = "domain: example.com\n" + text
    if not extra.startswith("acme_email:"):
        text = "acme_email: ops@example.com\n" + text
    assert refused(tmp_path, text + extra + "\n") == [f"inventory.yaml: {expected}"]


def test_key_file_path_rule(tmp_path: Path) -> None:
    text = BASE.replace("key_file: id_test", 'key_file: "id\\u2028test"')
    assert refused(tmp_path, text) == [
        f'inventory.yaml: hosts[0].key_file: {FILE_PATH}, got "id\\u2028test"']


def test_good_strings_are_accepted(tmp_path: Path) -> None:
    text = BASE + (
        "k3s: {data_dir: /data/k3s.d/}\n"
        "gitops: {branch: release/1.2_rc+x@y, repository:"
        " 'ssh://git@gitlab.example.com:2222/group/sub/repo.git'}\n")
    inv = load(inventory(tmp_path, text)).data
    assert (inv.k3s.data_dir, inv.gitops.branch) == ("/data/k3s.d/", "release/1.2_rc+x@y")
    text = BASE + "gitops: {repository: 'https://github.com/team-mercurious/k3s-gitops.git'}\n"
    assert load(inventory(tmp_path, text)).data.gitops.repository.endswith(".git")


@pytest.mark.parametrize("patch", [
    {"k3s": {"data_dir": "/"}}, {"k3s": {"data_dir": "/var/../etc"}},
    {"gitops": {"branch": "a..b"}}, {"gitops": {"branch": "-f"}},
    {"gitops": {"branch": "x.lock"}}, {"gitops": {"repository": "https://h/x/$(id)"}},
    {"host": {"ssh": {"known_hosts": "kh\n"}}}, {"operators": ["fe80::%1/64"]},
    {"k3s": {"tls_san": ["fe80::1%x"]}}, {"domain": ("a" * 63 + ".") * 4 + "com"},
    {"hosts": [{"user": "root"}]}, {"hosts": [{"address": "fe80::1%eth0"}]},
    {"hosts": [{"key_file": "k\x1b"}]}, {"hosts": [{"internal_address": "fe80::1%x"}]},
])
def test_the_schema_says_it_too(patch: dict) -> None:
    import jsonschema

    from tasks.model.load import schema

    data = yaml.safe_load(BASE)
    for key, value in patch.items():
        if key == "hosts":
            data["hosts"] = [{**data["hosts"][0], **value[0]}]
        else:
            data[key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema())
    data = yaml.safe_load(BASE)
    jsonschema.validate(data, schema())


# 5. Key files and known_hosts, when a task will connect -------------------------------



def with_key(tmp_path: Path, key_file: str) -> str:
    return BASE.replace("key_file: id_test", f"key_file: '{key_file}'")


def test_missing_key_file_path_is_shown_normalised(tmp_path: Path) -> None:
    assert refused(tmp_path, with_key(tmp_path, "keys/../sub/./missing")) == [
        f"inventory.yaml: hosts[0].key_file: file not found: {tmp_path}/sub/missing (create"
        " one with ssh-keygen -t ed25519, or fix the path)"]


def test_tilde_is_expanded_in_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert refused(tmp_path, with_key(tmp_path, "~/.ssh/id_missing")) == [
        f"inventory.yaml: hosts[0].key_file: file not found: {tmp_path}/home/.ssh/id_missing"
        " (create one with ssh-keygen -t ed25519, or fix the path)"]


def test_key_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    assert refused(tmp_path, with_key(tmp_path, "keys")) == [
        f"inventory.yaml: hosts[0].key_file: {tmp_path}/keys is a directory, not a private"
        " key file"]


def test_key_file_that_is_a_fifo_is_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    assert refused(tmp_path, with_key(tmp_path, "fifo")) == [
        f"inventory.yaml: hosts[0].key_file: {tmp_path}/fifo is not a regular file, not a"
        " private key file"]


def test_unreadable_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = inventory(tmp_path, with_key(tmp_path, "locked"))
    (tmp_path / "locked").write_text(OPENSSH_HEADER)
    real_open = Path.open

    def deny(self: Path, *a: object, **k: object) -> object:
        if self.name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(InventoryError) as info:
        load(text)
    assert info.value.lines == [
        f"inventory.yaml: hosts[0].key_file: cannot read {tmp_path}/locked: Permission denied"]


@pytest.mark.parametrize("content", [
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDOq user@host\n",
    b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe",
    b"",
    b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
    b"-----BEGIN CERTIFICATE-----\n",
    b"domain: example.com\n",
])
def test_key_file_that_is_not_a_private_key(tmp_path: Path, content: bytes) -> None:
    text = inventory(tmp_path, with_key(tmp_path, "id_test.pub"))
    (tmp_path / "id_test.pub").write_bytes(content)
    with pytest.raises(InventoryError) as info:
        load(text)
    assert info.value.lines == [
        f"inventory.yaml: hosts[0].key_file: {tmp_path}/id_test.pub {NOT_A_KEY}"]


# The accepted first lines, each put together from its kind (see OPENSSH_HEADER).
@pytest.mark.parametrize("header", [
    f"-----BEGIN {kind}" + "PRIVATE KEY-----"
    for kind in ("OPENSSH ", "RSA ", "EC ", "DSA ", "", "ENCRYPTED ")
])
def test_private_key_headers_are_accepted(tmp_path: Path, header: str) -> None:
    text = inventory(tmp_path, with_key(tmp_path, "k"))
    (tmp_path / "k").write_bytes(header.encode() + b"\r\nAAAA\n")
    assert load(text).data.hosts[0].key_file == "k"


def test_offline_tasks_check_no_local_files(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "kh").write_text(OPENSSH_HEADER)
    text = with_key(tmp_path, "keys") + "host: {ssh: {known_hosts: kh}}\n"
    assert load(inventory(tmp_path, text), require_key_files=False).data.hosts[0].key_file \
        == "keys"



GOOD_KNOWN_HOSTS = f"""\
# project known_hosts

203.0.113.20 ssh-ed25519 {ssh_blob("ssh-ed25519")}
[127.0.0.1]:2222,[::1]:2222 ecdsa-sha2-nistp256 {ssh_blob("ecdsa-sha2-nistp256")} lab
  *.example.com,!bad.example.com,10.0.?.* ssh-rsa {ssh_blob("ssh-rsa")}
|1|{base64.b64encode(b"s" * 20).decode()}|{base64.b64encode(b"h" * 20).decode()} \
ssh-ed25519 {ssh_blob("ssh-ed25519")}
@cert-authority *.example.com ssh-ed25519 {ssh_blob("ssh-ed25519")} ca
@revoked vps1 sk-ssh-ed25519@openssh.com {ssh_blob("sk-ssh-ed25519@openssh.com")}
"""
NOT_KNOWN_HOSTS = ("is not a known_hosts entry (host patterns, key type, base64 key); is"
                   " host.ssh.known_hosts the right file?")


def with_known_hosts(tmp_path: Path, content: bytes | None, name: str = "kh") -> Path:
    path = inventory(tmp_path, BASE + f"host: {{ssh: {{known_hosts: {name}}}}}\n")
    if content is not None:
        (tmp_path / name).write_bytes(content)
    return path


def test_a_real_known_hosts_file_is_accepted(tmp_path: Path) -> None:
    import paramiko

    path = with_known_hosts(tmp_path, GOOD_KNOWN_HOSTS.encode())
    assert load(path).known_hosts == tmp_path / "kh"
    key = paramiko.ECDSAKey.generate()
    (tmp_path / "kh").write_text(f"[127.0.0.1]:2222 {key.get_name()} {key.get_base64()}\n")
    assert load(path).known_hosts == tmp_path / "kh"


def test_a_missing_known_hosts_file_is_first_contact(tmp_path: Path) -> None:
    assert load(with_known_hosts(tmp_path, None)).known_hosts == tmp_path / "kh"


@pytest.mark.parametrize(("content", "line"), [
    (OPENSSH_HEADER.encode() + b"b3BlbnNzaC1rZXktdjEAAAAA\n", 1),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe\n", 1),
    (BASE.encode(), 1),
    (b"# fine\n\n" + b"\xff\xfe junk\n", 3),
    (GOOD_KNOWN_HOSTS.encode() + b"vps1 ssh-ed25519\n", 9),
    (GOOD_KNOWN_HOSTS.encode() + b"vps1 ssh-ed25519 not*base64\n", 9),
    (GOOD_KNOWN_HOSTS.encode() + f"vps1 ssh-rsa {ssh_blob('ssh-ed25519')}\n".encode(), 9),
    (GOOD_KNOWN_HOSTS.encode() + f"@trusted vps1 ssh-ed25519 {ssh_blob('ssh-ed25519')}\n"
     .encode(), 9),
    (GOOD_KNOWN_HOSTS.encode() + f"|1|x|y ssh-ed25519 {ssh_blob('ssh-ed25519')}\n".encode(),
     9),
    (GOOD_KNOWN_HOSTS.encode() + f"v'1;$(id) ssh-ed25519 {ssh_blob('ssh-ed25519')}\n"
     .encode(), 9),
])
def test_known_hosts_that_is_not_one_names_the_line(tmp_path: Path, content: bytes,
                                                    line: int) -> None:
    with pytest.raises(InventoryError) as info:
        load(with_known_hosts(tmp_path, content))
    assert info.value.lines == [
        f"inventory.yaml: host.ssh.known_hosts: {tmp_path}/kh line {line} {NOT_KNOWN_HOSTS}"]


def test_known_hosts_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "kh").mkdir()
    (tmp_path / "sub").mkdir()
    assert refused(tmp_path, BASE + "host: {ssh: {known_hosts: sub/../kh}}\n") == [
        f"inventory.yaml: host.ssh.known_hosts: {tmp_path}/kh is a directory, not a"
        " known_hosts file"]

