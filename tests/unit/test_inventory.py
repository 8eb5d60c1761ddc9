"""Inventory validation: every error is one line naming file, field, expectation, value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tasks.engine.errors import InventoryError
from tasks.model import load
from tasks.model.load import SCHEMA_PATH, schema, schema_text
from tests.unit.inventory_text import OPENSSH_HEADER

REPO = Path(__file__).resolve().parents[2]
# Only the first line of a key file is checked (load() refuses a .pub file or junk).
FAKE_KEY = OPENSSH_HEADER + "not really a key\n"


def minimal(tmp_path: Path) -> dict:
    key = tmp_path / "id_test"
    key.write_text(FAKE_KEY)
    return {
        "domain": "example.com",
        "acme_email": "ops@example.com",
        "operators": ["203.0.113.10/32"],
        "hosts": [{"name": "vps1", "address": "203.0.113.20", "user": "admin",
                   "key_file": str(key)}],
    }


def write(tmp_path: Path, data: object, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def errors_of(tmp_path: Path, data: object) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load(write(tmp_path, data))
    assert info.value.exit_code == 2
    return info.value.lines


def test_minimal_inventory_gets_spec_defaults(tmp_path: Path) -> None:
    inv = load(write(tmp_path, minimal(tmp_path))).data
    assert inv.hosts[0].connect_ports(inv.host.ssh.port) == (22,)  # sshd on 22, no forwards
    assert inv.versions.k3s == "v1.33.3+k3s1"
    assert inv.versions.cert_manager == "v1.13.1"
    assert inv.versions.flux == "2.6.4"
    assert inv.host.fail2ban.bantime == "10m"
    assert inv.host.fail2ban.maxretry == 5
    assert inv.host.firewall.open_tcp == [80, 443]
    assert inv.host.firewall.api_port == 6443
    assert (inv.k3s.pod_cidr, inv.k3s.service_cidr) == ("10.42.0.0/16", "10.43.0.0/16")
    assert (inv.k3s.traefik_http_nodeport, inv.k3s.traefik_https_nodeport) == (32170, 31931)
    assert inv.gitops.repository.endswith("team-mercurious/k3s-gitops")
    assert (inv.gitops.branch, inv.gitops.path) == ("main", "./clusters/vps")
    assert (inv.gitops.interval, inv.gitops.reconcile_interval) == ("1m", "10m")
    assert inv.monitoring.retention == "7d"
    assert (inv.monitoring.prometheus_storage, inv.monitoring.grafana_storage) == ("10Gi", "5Gi")
    assert inv.kafka.cluster == "my-cluster" and len(inv.kafka.topics) == 6
    assert inv.apps.namespace == "app" and inv.api_host == "api.example.com"


@pytest.mark.parametrize(("patch", "expected"), [
    ({"hosts": [{"port": "22a"}]},
     'inventory.yaml: hosts[0].port: expected an integer 1-65535, got "22a"'),
    ({"hosts": [{"port": 70000}]},
     "inventory.yaml: hosts[0].port: expected an integer 1-65535, got 70000"),
    ({"hosts": [{"port": True}]},
     "inventory.yaml: hosts[0].port: expected an integer 1-65535, got true"),
    ({"operators": ["10.0.0.1/8"]},
     'inventory.yaml: operators[0]: expected a CIDR such as 203.0.113.7/32 (host bits zero),'
     ' got "10.0.0.1/8"'),
    ({"operators": ["nonsense"]},
     'inventory.yaml: operators[0]: expected a CIDR such as 203.0.113.7/32 (host bits zero),'
     ' got "nonsense"'),
    ({"operators": "203.0.113.10/32"},
     'inventory.yaml: operators: expected a list, got "203.0.113.10/32"'),
    ({"hosts": [{"role": "master"}]},
     'inventory.yaml: hosts[0].role: expected one of "server", "agent", got "master"'),
    ({"versions": {"k3s": "1.33"}},
     'inventory.yaml: versions.k3s: expected a K3s version such as v1.33.3+k3s1, got "1.33"'),
    ({"versions": {"flux": "latest"}},
     'inventory.yaml: versions.flux: expected a version such as 1.2.3, got "latest"'),
    ({"domain": "Not A Domain"},
     "inventory.yaml: domain: expected a domain name such as example.com (at most 253"
     ' characters), got "Not A Domain"'),
    ({"acme_email": "nobody"},
     'inventory.yaml: acme_email: expected an e-mail address (at most 254 characters),'
     ' got "nobody"'),
    ({"colour": "blue"}, "inventory.yaml: colour: unknown key (known keys: "),
    ({"hosts": [{"nmae": "x"}]}, "inventory.yaml: hosts[0].nmae: unknown key"),
    ({"host": {"fail2ban": {"bantime": "ten minutes"}}},
     'inventory.yaml: host.fail2ban.bantime: expected a duration such as 30s, 10m, 1h or 7d,'
     ' got "ten minutes"'),
    ({"apps": {"api_gateway": {"image": "ghcr.io/team-mercurious/api-gateway:latest"}}},
     "inventory.yaml: apps.api_gateway.image: expected an image with a pinned tag or digest"),
    ({"apps": {"api_gateway": {"image": "ghcr.io/team-mercurious/api-gateway"}}},
     "inventory.yaml: apps.api_gateway.image: expected an image with a pinned tag or digest"),
    ({"secrets": {"age_recipients": ["age1short"]}},
     'inventory.yaml: secrets.age_recipients[0]: expected an age public key (age1...),'
     ' got "age1short"'),
    ({"k3s": {"service_cidr": "10.42.128.0/17"}},
     "inventory.yaml: k3s.service_cidr: overlaps k3s.pod_cidr (10.42.0.0/16)"),
    ({"k3s": {"traefik_http_nodeport": 80}},
     "inventory.yaml: k3s.traefik_http_nodeport: expected a NodePort 30000-32767, got 80"),
    ({"operators": []}, "inventory.yaml: operators: at least one CIDR is required"),
    ({"k3s": {"traefik_http_nodeport": 31931}},
     "inventory.yaml: k3s.traefik_https_nodeport: same as traefik_http_nodeport (31931)"),
    ({"kafka": {"topics": ["a.progress", "b", "a.progress"]}},
     'inventory.yaml: kafka.topics: duplicate topic "a.progress"'),
    ({"apps": {"namespace": "monitoring"}},
     'inventory.yaml: apps.namespace: "monitoring" is already used by monitoring'),
    ({"gitops": {"path": "./"}}, "inventory.yaml: gitops.path: expected a path inside the"),
    ({"gitops": {"path": "./clusters/../../etc"}},
     "inventory.yaml: gitops.path: expected a path inside the"),
    ({"apps": {"namespace": "kafka"}},
     'inventory.yaml: apps.namespace: "kafka" is already used by kafka'),
    ({"kafka": {"namespace": "kube-system"}},
     'inventory.yaml: kafka.namespace: "kube-system" is a system namespace'),
    ({"hosts": []}, "inventory.yaml: hosts: at least one host is required"),
    ({"hosts": [{"role": "agent"}]}, "inventory.yaml: hosts: at least one host needs role: server"),
])
def test_bad_values_give_one_precise_line(tmp_path: Path, patch: dict, expected: str) -> None:
    data = minimal(tmp_path)
    for key, value in patch.items():
        if key == "hosts" and value and isinstance(value, list):
            data["hosts"] = [{**data["hosts"][0], **value[0]}]
        else:
            data[key] = value
    lines = errors_of(tmp_path, data)
    assert any(line.startswith(expected) for line in lines), lines


def test_missing_required_and_key_file(tmp_path: Path) -> None:
    data = minimal(tmp_path)
    del data["acme_email"]
    data["hosts"][0]["key_file"] = "keys/missing"
    lines = errors_of(tmp_path, data)
    assert "inventory.yaml: acme_email: required key is missing" in lines
    data["acme_email"] = "ops@example.com"
    lines = errors_of(tmp_path, data)
    assert lines[0].startswith(f"inventory.yaml: hosts[0].key_file: file not found:"
                               f" {tmp_path / 'keys/missing'}")


def test_offline_tasks_do_not_need_key_files(tmp_path: Path) -> None:
    data = minimal(tmp_path)
    data["hosts"][0]["key_file"] = "/nonexistent/key"
    loaded = load(write(tmp_path, data), require_key_files=False)
    assert loaded.data.hosts[0].key_file == "/nonexistent/key"


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    data = minimal(tmp_path)
    data["hosts"][0]["port"] = "x"
    data["operators"] = ["bad"]
    data["domain"] = 5
    assert len(errors_of(tmp_path, data)) == 3


def test_duplicate_host_names(tmp_path: Path) -> None:
    data = minimal(tmp_path)
    data["hosts"].append(dict(data["hosts"][0]))
    assert 'inventory.yaml: hosts[1].name: duplicate of hosts[0] ("vps1")' in errors_of(
        tmp_path, data)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    lines = errors_of(tmp_path, "domain: [unclosed\n")
    assert lines[0].startswith("inventory.yaml:2:1: invalid YAML")


def test_key_file_relative_to_inventory(tmp_path: Path) -> None:
    data = minimal(tmp_path)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "k").write_text(FAKE_KEY)
    data["hosts"][0]["key_file"] = "keys/k"
    loaded = load(write(tmp_path, data))
    assert loaded.key_file(loaded.data.hosts[0]) == tmp_path / "keys" / "k"


def test_json_schema_is_current_and_accepts_the_shipped_inventory() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "run: inv inventory.schema --write"
    jsonschema.Draft202012Validator.check_schema(schema())
    shipped = yaml.safe_load((REPO / "inventory.yaml").read_text())
    jsonschema.validate(shipped, schema())


def test_json_schema_rejects_what_the_validator_rejects(tmp_path: Path) -> None:
    data = minimal(tmp_path)
    data["hosts"][0]["port"] = "22a"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema())
    data["hosts"][0]["port"] = 22
    data["unknown"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema())


def test_cli_exit_code_2_and_no_traceback(tmp_path: Path) -> None:
    data = minimal(tmp_path)
    data["hosts"][0]["port"] = "22a"
    path = write(tmp_path, data)
    proc = subprocess.run([sys.executable, "-m", "invoke", "host.harden", "-i", str(path)],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ('error: inventory.yaml: hosts[0].port: expected an integer'
                                   ' 1-65535, got "22a"')
    assert "Traceback" not in proc.stderr


def test_inventory_env_var_selects_file(tmp_path: Path) -> None:
    path = write(tmp_path, minimal(tmp_path), "other.yaml")
    env = {"STACK_INVENTORY": str(path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "invoke", "inventory.check"], cwd=REPO,
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "other.yaml: valid" in proc.stdout
    assert json.loads(SCHEMA_PATH.read_text())["title"]
