"""K3s host files: the spec's numbers on the rendered config, and the checks catching
every deliberately broken variant."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from platform_ctx import variant

from tasks.stack.components import k3s
from tasks.stack.components.k3s_checks import EXEMPT_NAMESPACES, kernel_defaults
from tasks.stack.render import Bundle, HostFile

CTX = variant()


def files(ctx: dict[str, Any] | None = None) -> dict[str, HostFile]:
    return {f.path: f for f in k3s.render(ctx or CTX).host_files}


def parsed(path: str, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(files(ctx)[path].content)
    return data


def args(cfg: dict[str, Any], field: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in cfg[field])


def test_config_has_the_spec_values() -> None:
    cfg = parsed(k3s.CONFIG)
    assert cfg["write-kubeconfig-mode"] == "0600"  # improvement over 644, a string
    assert cfg["cluster-cidr"] == "10.42.0.0/16"
    assert cfg["service-cidr"] == "10.43.0.0/16"
    assert cfg["data-dir"] == "/var/lib/rancher/k3s"
    assert cfg["tls-san"] == ["203.0.113.20", "example.com"]
    assert cfg["node-name"] == "vps1"
    assert cfg["secrets-encryption"] is True
    assert cfg["protect-kernel-defaults"] is True
    assert "disable" not in cfg  # Traefik and local-path stay on
    assert "cluster-init" not in cfg and "datastore-endpoint" not in cfg  # SQLite


def test_config_points_the_api_server_at_the_policies_and_audit_log() -> None:
    api = args(parsed(k3s.CONFIG), "kube-apiserver-arg")
    assert api == {
        "admission-control-config-file": "/etc/rancher/k3s/psa.yaml",
        "audit-policy-file": "/etc/rancher/k3s/audit-policy.yaml",
        "audit-log-path": "/var/lib/rancher/k3s/server/logs/audit.log",
        "audit-log-maxage": "30", "audit-log-maxbackup": "10", "audit-log-maxsize": "100",
    }
    assert {k3s.PSA, k3s.AUDIT_POLICY} <= set(files())


def test_metrics_endpoints_listen_for_prometheus() -> None:
    cfg = parsed(k3s.CONFIG)
    assert args(cfg, "kube-controller-manager-arg") == {"bind-address": "0.0.0.0"}
    assert args(cfg, "kube-scheduler-arg") == {"bind-address": "0.0.0.0"}
    assert args(cfg, "kube-proxy-arg") == {"metrics-bind-address": "0.0.0.0:10249"}


def test_every_host_file_is_root_only() -> None:
    assert {f.mode for f in files().values()} == {"0600"}
    assert sorted(files()) == sorted([k3s.CONFIG, k3s.PSA, k3s.AUDIT_POLICY])


def test_config_follows_the_inventory() -> None:
    ctx = variant(
        hosts=[{"name": "cp", "address": "198.51.100.1", "user": "admin", "key_file": "k"},
               {"name": "w1", "address": "198.51.100.2", "user": "admin", "key_file": "k",
                "role": "agent"}],
        domain="other.example.org",
        k3s={"pod_cidr": "10.60.0.0/16", "service_cidr": "10.61.0.0/16",
             "data_dir": "/srv/k3s", "tls_san": ["k8s.other.example.org"]})
    cfg = parsed(k3s.CONFIG, ctx)
    assert cfg["node-name"] == "cp"
    assert cfg["tls-san"] == ["198.51.100.1", "198.51.100.2", "other.example.org",
                              "k8s.other.example.org"]
    assert (cfg["cluster-cidr"], cfg["service-cidr"]) == ("10.60.0.0/16", "10.61.0.0/16")
    assert cfg["data-dir"] == "/srv/k3s"
    assert args(cfg, "kube-apiserver-arg")["audit-log-path"] == "/srv/k3s/server/logs/audit.log"
    assert k3s.checks(k3s.render(ctx), ctx) == []


def test_server_files_name_the_node() -> None:
    cfg = yaml.safe_load(k3s.server_files(CTX, "vps2")[0].content)
    assert cfg["node-name"] == "vps2"


def test_psa_is_restricted_with_named_exemptions() -> None:
    doc = parsed(k3s.PSA)
    assert doc["apiVersion"] == "apiserver.config.k8s.io/v1"
    assert doc["kind"] == "AdmissionConfiguration"
    [plugin] = doc["plugins"]
    conf = plugin["configuration"]
    assert plugin["name"] == "PodSecurity"
    assert conf["apiVersion"] == "pod-security.admission.config.k8s.io/v1"
    assert conf["kind"] == "PodSecurityConfiguration"
    assert conf["defaults"] == {m: v for mode in ("enforce", "audit", "warn")
                                for m, v in ((mode, "restricted"), (f"{mode}-version", "v1.33"))}
    assert conf["exemptions"] == {"usernames": [], "runtimeClasses": [],
                                  "namespaces": ["kube-system"]}
    assert EXEMPT_NAMESPACES == ["kube-system"]


def test_psa_version_follows_the_k3s_minor() -> None:
    ctx = variant(versions={"k3s": "v1.34.1+k3s1"})
    conf = parsed(k3s.PSA, ctx)["plugins"][0]["configuration"]
    assert conf["defaults"]["enforce-version"] == "v1.34"
    assert k3s.checks(k3s.render(ctx), ctx) == []


def test_audit_policy_never_logs_secret_bodies() -> None:
    policy = parsed(k3s.AUDIT_POLICY)
    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    first = policy["rules"][0]
    assert first["level"] == "Metadata"
    assert {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]} \
        in first["resources"]
    assert policy["rules"][-1] == {"level": "Metadata"}
    assert all(r["level"] != "RequestResponse" for r in policy["rules"])


def test_default_render_passes_the_checks() -> None:
    assert k3s.checks(k3s.render(CTX), CTX) == []


def test_host_harden_sets_the_kubelet_sysctls() -> None:
    assert kernel_defaults() == []
    missing = [("vm.panic_on_oom", "0", ""), ("kernel.panic", "0", "")]
    errors = kernel_defaults(missing)
    assert "tasks/harden/sysctl.py: SETTINGS kernel.panic: must be 10 before K3s starts" \
        " (protect-kernel-defaults: true), got 0" in errors
    assert any("vm.overcommit_memory: must be 1" in e and e.endswith("got None")
               for e in errors)


# Deliberately broken files ------------------------------------------------------------

def broken(path: str, change: Callable[[dict[str, Any]], None]) -> list[str]:
    bundle = k3s.render(CTX)
    out = []
    for hf in bundle.host_files:
        if hf.path == path:
            data = yaml.safe_load(hf.content)
            change(data)
            hf = dataclasses.replace(hf, content=yaml.safe_dump(data))
        out.append(hf)
    return k3s.checks(Bundle(host_files=out), CTX)


def setter(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.__setitem__(key, value)


CFG = "manifests/k3s/host/config.yaml: K3sConfig /etc/rancher/k3s/config.yaml"
PSA = "manifests/k3s/host/psa.yaml: AdmissionConfiguration /etc/rancher/k3s/psa.yaml"
AUDIT = "manifests/k3s/host/audit-policy.yaml: Policy /etc/rancher/k3s/audit-policy.yaml"


@pytest.mark.parametrize(("change", "error"), [
    (setter("write-kubeconfig-mode", "0644"),
     f"{CFG}: write-kubeconfig-mode: must be '0600', got '0644'"),
    (setter("write-kubeconfig-mode", 600),
     f"{CFG}: write-kubeconfig-mode: must be '0600', got 600"),
    (setter("secrets-encryption", False),
     f"{CFG}: secrets-encryption: must be True, got False"),
    (lambda d: d.pop("protect-kernel-defaults"),
     f"{CFG}: protect-kernel-defaults: missing (expected True)"),
    (setter("cluster-cidr", "10.0.0.0/16"),
     f"{CFG}: cluster-cidr: must be '10.42.0.0/16', got '10.0.0.0/16'"),
    (setter("service-cidr", "10.96.0.0/12"),
     f"{CFG}: service-cidr: must be '10.43.0.0/16', got '10.96.0.0/12'"),
    (setter("tls-san", ["203.0.113.20"]),
     f"{CFG}: tls-san: must be ['203.0.113.20', 'example.com'], got ['203.0.113.20']"),
    (setter("disable", ["traefik"]), f"{CFG}: disable: traefik must stay enabled (spec)"),
    (setter("disable", "local-storage"),
     f"{CFG}: disable: local-storage must stay enabled (spec)"),
    (setter("cluster-init", True),
     f"{CFG}: cluster-init: the spec's datastore is embedded SQLite: remove it"),
    (setter("write-kubeconfig-mod", "0600"),
     f"{CFG}: write-kubeconfig-mod: unknown K3s server setting (typo? known: see"
     " tasks/stack/components/k3s_checks.py)"),
    (setter("kube-scheduler-arg", ["bind-address=127.0.0.1"]),
     f"{CFG}: kube-scheduler-arg bind-address: must be 0.0.0.0 so Prometheus can scrape it,"
     " got 127.0.0.1"),
    (lambda d: d.pop("kube-proxy-arg"),
     f"{CFG}: kube-proxy-arg metrics-bind-address: must be 0.0.0.0:10249 so Prometheus can"
     " scrape it, got None"),
    (setter("kube-apiserver-arg", ["audit-policy-file=/etc/rancher/k3s/audit-policy.yaml"]),
     f"{CFG}: kube-apiserver-arg admission-control-config-file: must be"
     " /etc/rancher/k3s/psa.yaml, got None"),
    (lambda d: d["kube-apiserver-arg"].append("audit-log-maxage=0"),
     f"{CFG}: kube-apiserver-arg audit-log-maxage: must be a positive number, got 0"),
    (lambda d: d["kube-apiserver-arg"].append("audit-log-maxsize"),
     f"{CFG}: kube-apiserver-arg[6]: must be name=value, got 'audit-log-maxsize'"),
])
def test_broken_config_is_caught(change: Callable[[dict[str, Any]], None], error: str) -> None:
    assert error in broken(k3s.CONFIG, change)


def _conf(d: dict[str, Any]) -> dict[str, Any]:
    conf: dict[str, Any] = d["plugins"][0]["configuration"]
    return conf


@pytest.mark.parametrize(("change", "error"), [
    (lambda d: _conf(d)["defaults"].__setitem__("enforce", "baseline"),
     f"{PSA}: defaults.enforce: must be restricted, got baseline"),
    (lambda d: _conf(d)["defaults"].__setitem__("warn-version", "latest"),
     f"{PSA}: defaults.warn-version: must be v1.33, got latest"),
    (lambda d: _conf(d)["exemptions"]["namespaces"].append("app"),
     f"{PSA}: exemptions.namespaces: must be exactly ['kube-system'] (each"
     " justified in psa.yaml), got ['kube-system', 'app']"),
    (lambda d: _conf(d)["exemptions"].__setitem__("usernames", ["admin"]),
     f"{PSA}: exemptions.usernames: must be empty, got ['admin']"),
    (lambda d: d.__setitem__("plugins", []),
     f"{PSA}: plugins: must configure PodSecurity exactly once, found 0"),
    (lambda d: _conf(d).__setitem__("apiVersion", "pod-security.admission.config.k8s.io/v1beta1"),
     f"{PSA}: apiVersion: must be 'pod-security.admission.config.k8s.io/v1', got"
     " 'pod-security.admission.config.k8s.io/v1beta1'"),
])
def test_broken_psa_is_caught(change: Callable[[dict[str, Any]], None], error: str) -> None:
    assert error in broken(k3s.PSA, change)


@pytest.mark.parametrize(("change", "error"), [
    (lambda d: d["rules"][0].__setitem__("level", "RequestResponse"),
     f"{AUDIT}: rules[0].level: RequestResponse would log the body of core/secrets:"
     " sensitive objects get Metadata at most"),
    (lambda d: d["rules"].insert(0, {"level": "Request", "users": ["admin"]}),
     f"{AUDIT}: rules[0].level: Request would log the body of core/configmaps: sensitive"
     " objects get Metadata at most"),
    (lambda d: d["rules"][0].__setitem__("level", "None"),
     f"{AUDIT}: rules[0].level: None: access to core/secrets would not be audited"),
    (lambda d: d["rules"].pop(),
     f"{AUDIT}: rules[3]: the last rule must be a catch-all `level: Metadata` so every"
     " other request is audited"),
    (lambda d: d["rules"][1].__setitem__("level", "Verbose"),
     f"{AUDIT}: rules[1].level: must be one of ['Metadata', 'None', 'Request',"
     " 'RequestResponse']"),
    (lambda d: d.__setitem__("rules", [{"level": "Metadata", "nonResourceURLs": ["/x"]}]),
     f"{AUDIT}: rules: no rule audits core/secrets"),
])
def test_broken_audit_policy_is_caught(change: Callable[[dict[str, Any]], None],
                                       error: str) -> None:
    assert error in broken(k3s.AUDIT_POLICY, change)


def test_missing_file_bad_yaml_and_loose_mode_are_caught() -> None:
    hosts = k3s.render(CTX).host_files
    errors = k3s.checks(Bundle(host_files=[
        dataclasses.replace(hosts[0], mode="0644"),
        dataclasses.replace(hosts[1], content="plugins: [unclosed\n"),
    ]), CTX)
    assert f"manifests/k3s/host/config.yaml: HostFile {k3s.CONFIG}: mode: must be 0600 (it" \
        " configures the API server), got 0644" in errors
    assert any(e.startswith(f"{PSA}: (file): invalid YAML") for e in errors)
    assert f"manifests/k3s/host: HostFile {k3s.AUDIT_POLICY}: missing from the k3s bundle" \
        in errors


# Each remaining branch broken alone: the exact lines, nothing else ---------------------

def replace_arg(field: str, name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d[field] = [a for a in d[field] if not a.startswith(f"{name}=")] + [f"{name}={value}"]
    return change


UNKNOWN = ("unknown K3s server setting (typo? known: see"
           " tasks/stack/components/k3s_checks.py)")

ALONE: list[tuple[str, str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("datastore endpoint", k3s.CONFIG, setter("datastore-endpoint", "mysql://x"),
     [f"{CFG}: datastore-endpoint: {UNKNOWN}",
      f"{CFG}: datastore-endpoint: the spec's datastore is embedded SQLite: remove it"]),
    ("data dir", k3s.CONFIG, setter("data-dir", "/srv/k3s"),
     [f"{CFG}: data-dir: must be '/var/lib/rancher/k3s', got '/srv/k3s'"]),
    ("no node name", k3s.CONFIG, lambda d: d.pop("node-name"),
     [f"{CFG}: node-name: missing: the node's name from the inventory"]),
    ("empty node name", k3s.CONFIG, setter("node-name", ""),
     [f"{CFG}: node-name: missing: the node's name from the inventory"]),
    ("no kubeconfig mode", k3s.CONFIG, lambda d: d.pop("write-kubeconfig-mode"),
     [f"{CFG}: write-kubeconfig-mode: missing (expected '0600')"]),
    ("secrets encryption as a string", k3s.CONFIG, setter("secrets-encryption", "true"),
     [f"{CFG}: secrets-encryption: must be True, got 'true'"]),
    ("audit policy file", k3s.CONFIG,
     replace_arg("kube-apiserver-arg", "audit-policy-file", "/tmp/audit.yaml"),
     [f"{CFG}: kube-apiserver-arg audit-policy-file: must be"
      " /etc/rancher/k3s/audit-policy.yaml, got /tmp/audit.yaml"]),
    ("audit log path", k3s.CONFIG,
     replace_arg("kube-apiserver-arg", "audit-log-path", "/tmp/audit.log"),
     [f"{CFG}: kube-apiserver-arg audit-log-path: must be"
      " /var/lib/rancher/k3s/server/logs/audit.log, got /tmp/audit.log"]),
    ("audit log backups not a number", k3s.CONFIG,
     replace_arg("kube-apiserver-arg", "audit-log-maxbackup", "ten"),
     [f"{CFG}: kube-apiserver-arg audit-log-maxbackup: must be a positive number, got ten"]),
    ("controller manager on localhost", k3s.CONFIG,
     setter("kube-controller-manager-arg", ["bind-address=127.0.0.1"]),
     [f"{CFG}: kube-controller-manager-arg bind-address: must be 0.0.0.0 so Prometheus can"
      " scrape it, got 127.0.0.1"]),
    ("args not a list", k3s.CONFIG,
     setter("kube-controller-manager-arg", "bind-address=0.0.0.0"),
     [f"{CFG}: kube-controller-manager-arg: must be a list of name=value strings",
      f"{CFG}: kube-controller-manager-arg bind-address: must be 0.0.0.0 so Prometheus can"
      " scrape it, got None"]),
    ("psa apiVersion", k3s.PSA, setter("apiVersion", "apiserver.config.k8s.io/v1alpha1"),
     [f"{PSA}: apiVersion: must be 'apiserver.config.k8s.io/v1', got"
      " 'apiserver.config.k8s.io/v1alpha1'"]),
    ("psa kind", k3s.PSA, setter("kind", "AdmissionConfig"),
     [f"{PSA}: kind: must be 'AdmissionConfiguration', got 'AdmissionConfig'"]),
    ("PodSecurity twice", k3s.PSA, lambda d: d["plugins"].append(d["plugins"][0]),
     [f"{PSA}: plugins: must configure PodSecurity exactly once, found 2"]),
    ("PodSecurity from a file", k3s.PSA,
     lambda d: d["plugins"][0].pop("configuration"),
     [f"{PSA}: plugins[PodSecurity].configuration: missing"]),
    ("PodSecurity configuration kind", k3s.PSA,
     lambda d: _conf(d).__setitem__("kind", "PodSecurityConfig"),
     [f"{PSA}: kind: must be 'PodSecurityConfiguration', got 'PodSecurityConfig'"]),
    ("audit mode baseline", k3s.PSA,
     lambda d: _conf(d)["defaults"].__setitem__("audit", "baseline"),
     [f"{PSA}: defaults.audit: must be restricted, got baseline"]),
    ("enforce version missing", k3s.PSA,
     lambda d: _conf(d)["defaults"].pop("enforce-version"),
     [f"{PSA}: defaults.enforce-version: must be v1.33, got None"]),
    ("exempt runtime class", k3s.PSA,
     lambda d: _conf(d)["exemptions"].__setitem__("runtimeClasses", ["kata"]),
     [f"{PSA}: exemptions.runtimeClasses: must be empty, got ['kata']"]),
    ("kube-system not exempt", k3s.PSA,
     lambda d: _conf(d)["exemptions"].pop("namespaces"),
     [f"{PSA}: exemptions.namespaces: must be exactly ['kube-system'] (each justified in"
      " psa.yaml), got None"]),
    ("audit apiVersion", k3s.AUDIT_POLICY, setter("apiVersion", "audit.k8s.io/v1beta1"),
     [f"{AUDIT}: apiVersion: must be 'audit.k8s.io/v1', got 'audit.k8s.io/v1beta1'"]),
    ("audit kind", k3s.AUDIT_POLICY, setter("kind", "AuditPolicy"),
     [f"{AUDIT}: kind: must be 'Policy', got 'AuditPolicy'"]),
    ("no audit rules", k3s.AUDIT_POLICY, setter("rules", []),
     [f"{AUDIT}: rules: must be a non-empty list"]),
    ("audit rules not a list", k3s.AUDIT_POLICY, setter("rules", {"level": "Metadata"}),
     [f"{AUDIT}: rules: must be a non-empty list"]),
    ("a conditional None rule first", k3s.AUDIT_POLICY,
     lambda d: d["rules"].insert(0, {"level": "None", "users": ["system:kube-proxy"]}),
     []),
]


@pytest.mark.parametrize(("path", "change", "expected"), [c[1:] for c in ALONE],
                         ids=[c[0] for c in ALONE])
def test_each_check_alone(path: str, change: Callable[[dict[str, Any]], None],
                          expected: list[str]) -> None:
    assert broken(path, change) == expected


@pytest.mark.parametrize(("path", "kind", "source"), [
    (k3s.CONFIG, "K3sConfig", "config.yaml"), (k3s.PSA, "AdmissionConfiguration", "psa.yaml"),
    (k3s.AUDIT_POLICY, "Policy", "audit-policy.yaml")])
def test_a_file_that_is_not_a_mapping(path: str, kind: str, source: str) -> None:
    files = [dataclasses.replace(f, content="- a\n- b\n") if f.path == path else f
             for f in k3s.render(CTX).host_files]
    assert k3s.checks(Bundle(host_files=files), CTX) == [
        f"manifests/k3s/host/{source}: {kind} {path}: (file): must be a mapping, got list"]


# The API server's matching: an empty resources or nonResourceURLs list restricts
# nothing; resourceNames make a rule apply to some objects only.
BODY = "would log the body of {}: sensitive objects get Metadata at most"


@pytest.mark.parametrize(("rule", "expected"), [
    ({"level": "RequestResponse", "resources": []},
     [f"{AUDIT}: rules[0].level: RequestResponse {BODY.format(w)}"
      for w in ("core/secrets", "core/configmaps", "core/serviceaccounts/token",
                "authentication.k8s.io/tokenreviews")]),
    ({"level": "Request", "nonResourceURLs": []},
     [f"{AUDIT}: rules[0].level: Request {BODY.format(w)}"
      for w in ("core/secrets", "core/configmaps", "core/serviceaccounts/token",
                "authentication.k8s.io/tokenreviews")]),
    ({"level": "RequestResponse", "nonResourceURLs": ["/metrics"]}, []),
])
def test_audit_rules_match_as_the_api_server_does(rule: dict[str, Any],
                                                  expected: list[str]) -> None:
    assert broken(k3s.AUDIT_POLICY, lambda d: d["rules"].insert(0, rule)) == expected


def test_a_catch_all_may_spell_out_empty_lists() -> None:
    def spelled(d: dict[str, Any]) -> None:
        d["rules"][-1] = {"level": "Metadata", "resources": [], "nonResourceURLs": []}
    assert broken(k3s.AUDIT_POLICY, spelled) == []


def test_a_rule_for_some_secrets_does_not_cover_the_others() -> None:
    def named_first(d: dict[str, Any]) -> None:
        d["rules"][0:0] = [
            {"level": "Metadata",
             "resources": [{"group": "", "resources": ["secrets"], "resourceNames": ["x"]}]},
            {"level": "RequestResponse", "resources": [{"group": "", "resources": ["secrets"]}]}]
    assert broken(k3s.AUDIT_POLICY, named_first) == [
        f"{AUDIT}: rules[1].level: RequestResponse {BODY.format('core/secrets')}"]
