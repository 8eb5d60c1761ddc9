"""Structural checks of the K3s host files (config, PodSecurity admission, audit policy).

These files are read by K3s and the API server at start, not applied through the API, so
no schema validates them: a typo would only show when K3s refuses to start on the VPS.
Each error is one line: ``<template>: <Kind> <install path>: <field>: <problem>``.
Not a component (the registry imports only the names in its apply order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from tasks.harden.sysctl import SETTINGS as HARDEN_SYSCTLS
from tasks.stack.render import HostFile

# The namespaces exempt from PodSecurity, each justified in manifests/k3s/host/psa.yaml.
# Adding one is a security decision: change it here and there together.
EXEMPT_NAMESPACES = ["kube-system"]

# Kernel tunables the kubelet checks under protect-kernel-defaults; host.harden must set
# them before K3s starts.
KUBELET_SYSCTLS = {
    "vm.panic_on_oom": "0", "vm.overcommit_memory": "1",
    "kernel.panic": "10", "kernel.panic_on_oops": "1",
}

# `k3s server` settings we use or expect someone may add; anything else is most likely a
# typo that K3s would reject at start. Extend when a real flag is needed.
KNOWN_CONFIG_KEYS = {
    "node-name", "data-dir", "write-kubeconfig-mode", "tls-san", "cluster-cidr",
    "service-cidr", "secrets-encryption", "protect-kernel-defaults", "kube-apiserver-arg",
    "kube-controller-manager-arg", "kube-scheduler-arg", "kube-proxy-arg", "kubelet-arg",
    "disable", "node-ip", "node-external-ip", "node-label", "node-taint",
    "cluster-dns", "cluster-domain", "flannel-backend", "default-local-storage-path",
    "https-listen-port", "advertise-address", "bind-address", "token-file", "selinux",
    "embedded-registry", "write-kubeconfig", "cluster-init", "server",
}
# Metrics endpoints listen on every address so Prometheus reaches them from the pod
# network; UFW closes their ports (10249, 10257, 10259) to the outside.
ALL_ADDRESSES = "0.0.0.0"  # noqa: S104
# Bundled add-ons the spec keeps on (§3 Traefik, §11 local-path-provisioner).
KEEP_ENABLED = {"traefik", "local-storage"}

SENSITIVE = [("", "secrets"), ("", "configmaps"), ("", "serviceaccounts/token"),
             ("authentication.k8s.io", "tokenreviews")]
LEVELS = {"None", "Metadata", "Request", "RequestResponse"}


class Report:
    """Collects ``<source>: <Kind> <path>: <field>: <problem>`` lines for one file."""

    def __init__(self, hf: HostFile, kind: str, errors: list[str]) -> None:
        self.prefix = f"{hf.source}: {kind} {hf.path}"
        self.errors = errors

    def add(self, field: str, problem: str) -> None:
        self.errors.append(f"{self.prefix}: {field}: {problem}")

    def expect(self, data: Mapping[str, Any], field: str, want: Any) -> None:
        got = data.get(field, _MISSING)
        if got is _MISSING:
            self.add(field, f"missing (expected {want!r})")
        elif got != want or type(got) is not type(want):
            self.add(field, f"must be {want!r}, got {got!r}")


_MISSING = object()
_NO_FILE = HostFile(path="", content="", source="")


def check_host_files(files: list[HostFile], ctx: Mapping[str, Any],
                     expected: Mapping[str, str]) -> list[str]:
    """Every check on the server's host files; ``expected`` names the paths."""
    errors: list[str] = []
    by_path = {f.path: f for f in files}
    for role in ("config", "psa", "audit_policy"):
        if expected[role] not in by_path:
            errors.append(f"manifests/k3s/host: HostFile {expected[role]}: missing from"
                          " the k3s bundle")
    for hf in files:
        if hf.mode != "0600":
            errors.append(f"{hf.source}: HostFile {hf.path}: mode: must be 0600 (it"
                          f" configures the API server), got {hf.mode}")
    if "protect-kernel-defaults" in by_path.get(expected["config"], _NO_FILE).content:
        errors += kernel_defaults()
    checkers: dict[str, tuple[str, Callable[[Report, dict[str, Any]], None]]] = {
        expected["config"]: ("K3sConfig", lambda r, d: _config(r, d, ctx, expected)),
        expected["psa"]: ("AdmissionConfiguration",
                          lambda r, d: _psa(r, d, expected["psa_version"])),
        expected["audit_policy"]: ("Policy", _audit),
    }
    for path, (kind, check) in checkers.items():
        if path in by_path:
            report = Report(by_path[path], kind, errors)
            data = _load(report, by_path[path].content)
            if data is not None:
                check(report, data)
    return errors


def _load(report: Report, text: str) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        report.add("(file)", f"invalid YAML: {getattr(exc, 'problem', exc)}")
        return None
    if not isinstance(data, dict):
        report.add("(file)", f"must be a mapping, got {type(data).__name__}")
        return None
    return data


def _args(report: Report, data: Mapping[str, Any], field: str) -> dict[str, str]:
    """``[a=b, ...]`` as a dict; reports entries that are not ``name=value``."""
    raw = data.get(field, [])
    if not isinstance(raw, list):
        report.add(field, "must be a list of name=value strings")
        return {}
    out: dict[str, str] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, str) or "=" not in item:
            report.add(f"{field}[{i}]", f"must be name=value, got {item!r}")
            continue
        name, value = item.split("=", 1)
        out[name] = value
    return out


def _config(report: Report, cfg: dict[str, Any], ctx: Mapping[str, Any],
            expected: Mapping[str, str]) -> None:
    for key in sorted(set(cfg) - KNOWN_CONFIG_KEYS):
        report.add(key, "unknown K3s server setting (typo? known: see"
                        " tasks/stack/components/k3s_checks.py)")
    for key in ("cluster-init", "datastore-endpoint"):
        if key in cfg:
            report.add(key, "the spec's datastore is embedded SQLite: remove it")
    report.expect(cfg, "write-kubeconfig-mode", "0600")
    report.expect(cfg, "secrets-encryption", True)
    report.expect(cfg, "protect-kernel-defaults", True)
    report.expect(cfg, "cluster-cidr", ctx["k3s"]["pod_cidr"])
    report.expect(cfg, "service-cidr", ctx["k3s"]["service_cidr"])
    report.expect(cfg, "data-dir", ctx["k3s"]["data_dir"])
    report.expect(cfg, "tls-san", list(ctx["derived"]["tls_san"]))
    if not isinstance(cfg.get("node-name"), str) or not cfg.get("node-name"):
        report.add("node-name", "missing: the node's name from the inventory")
    disabled = cfg.get("disable", [])
    disabled = [disabled] if isinstance(disabled, str) else disabled
    for name in sorted(KEEP_ENABLED & set(disabled or [])):
        report.add("disable", f"{name} must stay enabled (spec)")
    api = _args(report, cfg, "kube-apiserver-arg")
    for name, want in (("admission-control-config-file", expected["psa"]),
                       ("audit-policy-file", expected["audit_policy"]),
                       ("audit-log-path", expected["audit_log"])):
        if api.get(name) != want:
            report.add(f"kube-apiserver-arg {name}", f"must be {want}, got {api.get(name)}")
    for name in ("audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize"):
        if not (api.get(name) or "").isdigit() or int(api[name]) < 1:
            report.add(f"kube-apiserver-arg {name}",
                       f"must be a positive number, got {api.get(name)}")
    for field, name, want in (
            ("kube-controller-manager-arg", "bind-address", ALL_ADDRESSES),
            ("kube-scheduler-arg", "bind-address", ALL_ADDRESSES),
            ("kube-proxy-arg", "metrics-bind-address", f"{ALL_ADDRESSES}:10249")):
        got = _args(report, cfg, field).get(name)
        if got != want:
            report.add(f"{field} {name}", f"must be {want} so Prometheus can scrape it,"
                                          f" got {got}")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _psa(report: Report, doc: dict[str, Any], version: str) -> None:
    report.expect(doc, "apiVersion", "apiserver.config.k8s.io/v1")
    report.expect(doc, "kind", "AdmissionConfiguration")
    plugins: list[Any] = doc["plugins"] if isinstance(doc.get("plugins"), list) else []
    found = [p for p in plugins if isinstance(p, dict) and p.get("name") == "PodSecurity"]
    if len(found) != 1:
        report.add("plugins", f"must configure PodSecurity exactly once, found {len(found)}")
        return
    conf = found[0].get("configuration")
    if not isinstance(conf, dict):
        report.add("plugins[PodSecurity].configuration", "missing")
        return
    report.expect(conf, "apiVersion", "pod-security.admission.config.k8s.io/v1")
    report.expect(conf, "kind", "PodSecurityConfiguration")
    defaults = _mapping(conf.get("defaults"))
    for mode in ("enforce", "audit", "warn"):
        if defaults.get(mode) != "restricted":
            report.add(f"defaults.{mode}", f"must be restricted, got {defaults.get(mode)}")
        if defaults.get(f"{mode}-version") != version:
            report.add(f"defaults.{mode}-version",
                       f"must be {version}, got {defaults.get(f'{mode}-version')}")
    ex = _mapping(conf.get("exemptions"))
    if ex.get("namespaces") != EXEMPT_NAMESPACES:
        report.add("exemptions.namespaces", f"must be exactly {EXEMPT_NAMESPACES} (each"
                   f" justified in psa.yaml), got {ex.get('namespaces')}")
    for field in ("usernames", "runtimeClasses"):
        if ex.get(field):
            report.add(f"exemptions.{field}", f"must be empty, got {ex.get(field)}")


def _rule_matches(rule: Mapping[str, Any], group: str, resource: str) -> bool:
    """Could ``rule`` apply to requests on ``group/resource`` (ignoring user, verb)?

    As the API server matches: a rule with nonResourceURLs never applies to resources,
    and one without resources (absent or an empty list) applies to them all.
    """
    if rule.get("nonResourceURLs"):
        return False
    if not rule.get("resources"):
        return True
    for entry in rule["resources"]:
        if not isinstance(entry, dict) or entry.get("group", "") not in (group, "*"):
            continue
        names = entry.get("resources") or ["*"]
        for name in names:
            if name in (resource, "*") or (name.endswith("/*") and
                                           resource.startswith(name[:-1])):
                return True
    return False


def _conditional(rule: Mapping[str, Any]) -> bool:
    """True when the rule applies to some requests only (so later rules still count)."""
    named = any(isinstance(e, dict) and e.get("resourceNames")
                for e in rule.get("resources") or [])
    return named or any(rule.get(k) for k in ("users", "userGroups", "verbs", "namespaces"))


def _audit(report: Report, doc: dict[str, Any]) -> None:
    report.expect(doc, "apiVersion", "audit.k8s.io/v1")
    report.expect(doc, "kind", "Policy")
    rules = doc.get("rules")
    if not isinstance(rules, list) or not rules:
        report.add("rules", "must be a non-empty list")
        return
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or rule.get("level") not in LEVELS:
            report.add(f"rules[{i}].level", f"must be one of {sorted(LEVELS)}")
            return
    for group, resource in SENSITIVE:
        what = f"{group or 'core'}/{resource}"
        for i, rule in enumerate(rules):
            if not _rule_matches(rule, group, resource):
                continue
            if rule["level"] in ("Request", "RequestResponse"):
                report.add(f"rules[{i}].level", f"{rule['level']} would log the body of"
                           f" {what}: sensitive objects get Metadata at most")
            if rule["level"] == "None" and not _conditional(rule):
                report.add(f"rules[{i}].level", f"None: access to {what} would not be"
                           " audited")
            if not _conditional(rule):
                break
        else:
            report.add("rules", f"no rule audits {what}")
    last = rules[-1]
    if last.get("level") != "Metadata" or _conditional(last) or last.get("resources") \
            or last.get("nonResourceURLs"):
        report.add(f"rules[{len(rules) - 1}]", "the last rule must be a catch-all"
                   " `level: Metadata` so every other request is audited")


def kernel_defaults(settings: list[tuple[str, str, str]] | None = None) -> list[str]:
    """What host.harden's sysctl settings miss of the kubelet's protect-kernel-defaults."""
    have = {k: v for k, v, _ in (HARDEN_SYSCTLS if settings is None else settings)}
    return [f"tasks/harden/sysctl.py: SETTINGS {key}: must be {want} before K3s starts"
            f" (protect-kernel-defaults: true), got {have.get(key)}"
            for key, want in KUBELET_SYSCTLS.items() if have.get(key) != want]
