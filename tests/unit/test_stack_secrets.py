"""secrets/: the SOPS creation rules, the templates (placeholders only, every Secret the
stack reads), and the encryption check on *.sops.yaml files."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from platform_ctx import variant

from tasks.model.model import SPEC_AGE_RECIPIENT
from tasks.stack import sops
from tasks.stack.components import render_all
from tasks.stack.render import Document, Release

CTX = variant()
OTHER_KEY = "age1" + "q" * 58

ENCRYPTED = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: app-config
  namespace: app
type: Opaque
stringData:
  MONGODB_URI: ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]
sops:
  age:
    - recipient: {SPEC_AGE_RECIPIENT}
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2026-01-01T00:00:00Z"
  mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
  encrypted_regex: ^(data|stringData)$
  version: 3.8.1
"""


def test_committed_sops_config_matches_the_inventory() -> None:
    assert sops.SOPS_CONFIG.read_text() == sops.creation_rules(
        list(CTX["secrets"]["age_recipients"]))
    rules = sops.load_config()["creation_rules"]
    assert rules == [{"path_regex": r"\.sops\.ya?ml$",
                      "encrypted_regex": "^(data|stringData)$",
                      "age": SPEC_AGE_RECIPIENT}]


def test_creation_rules_list_every_recipient() -> None:
    text = sops.creation_rules([SPEC_AGE_RECIPIENT, OTHER_KEY])
    [rule] = yaml.safe_load(text)["creation_rules"]
    assert rule["age"] == f"{SPEC_AGE_RECIPIENT},{OTHER_KEY}"
    assert rule["encrypted_regex"] == "^(data|stringData)$"


def templated(ctx: dict[str, object] | None = None) -> dict[tuple[str, str], Document]:
    return {(d.namespace or "", d.name): d for d in sops.template_documents(ctx or CTX)}


def test_templates_cover_the_stack_secrets() -> None:
    found = templated()
    assert sorted(found) == [
        ("app", "app-config"), ("app", "ghcr-pull"), ("app", "kafka-app-client"),
        ("flux-system", "flux-system"), ("flux-system", "sops-age"),
        ("kafka", "app-client-password"), ("kube-system", "k3s-token"),
        ("monitoring", "grafana-admin")]
    assert sops.template_problems(list(found.values())) == []
    assert set(found["app", "app-config"].obj["stringData"]) == {
        "MONGODB_URI", "REDIS_URL", "BETTER_AUTH_SECRET", "BETTER_AUTH_URL"}
    assert found["app", "ghcr-pull"].obj["type"] == "kubernetes.io/dockerconfigjson"
    assert set(found["monitoring", "grafana-admin"].obj["stringData"]) == {
        "admin-user", "admin-password"}
    assert set(found["flux-system", "flux-system"].obj["stringData"]) == {
        "identity", "identity.pub", "known_hosts"}
    assert set(found["flux-system", "sops-age"].obj["stringData"]) == {"age.agekey"}
    assert found["kube-system", "k3s-token"].obj["stringData"] == {
        "token": "<generate: 32 random bytes, hex>"}
    # One Kafka password, seen from both namespaces.
    assert found["kafka", "app-client-password"].obj["stringData"] == \
        found["app", "kafka-app-client"].obj["stringData"]


def test_templates_follow_the_inventory() -> None:
    ctx = variant(kafka={"namespace": "streaming", "user": "travel"},
                  apps={"namespace": "travel", "host": "api.travel.example.org"})
    found = templated(ctx)
    assert ("streaming", "travel-password") in found
    assert ("travel", "kafka-app-client") in found
    assert found["travel", "app-config"].obj["stringData"]["BETTER_AUTH_URL"] == \
        "<value: https://api.travel.example.org>"


def test_every_secret_the_stack_reads_is_templated() -> None:
    bundles = render_all(CTX)
    docs = [d for b in bundles.values() for d in b.documents]
    releases = [r for b in bundles.values() for r in b.releases]
    referenced = sops.referenced_secrets(docs, releases)
    assert ("flux-system", "sops-age") in referenced  # the detection itself works
    assert referenced - set(templated()) == set()


def test_referenced_secrets_sees_pods_refs_and_chart_values() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "x"},
           "spec": {"imagePullSecrets": [{"name": "pull"}],
                    "volumes": [{"name": "v", "secret": {"secretName": "vol"}}],
                    "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "env"}}],
                                    "env": [{"name": "A", "valueFrom": {"secretKeyRef": {
                                        "name": "key", "key": "k"}}}]}]}}
    rel = Release("r", "mon", "repo", "https://x", "c", "1", "v.yaml",
                  {"grafana": {"admin": {"existingSecret": "admin"}}})
    assert sops.referenced_secrets([Document("s", pod)], [rel]) == {
        ("x", "pull"), ("x", "vol"), ("x", "env"), ("x", "key"), ("mon", "admin")}


LABEL = "secrets/secret-app.template.yaml: Secret app-config"


def test_template_problems_catch_real_values() -> None:
    doc = templated()["app", "app-config"]
    obj = copy.deepcopy(doc.obj)
    obj["stringData"]["REDIS_URL"] = "redis://:hunter2@redis:6379"
    obj["data"] = {"X": "aHVudGVyMg=="}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    errors = sops.template_problems([Document(doc.source, obj), Document(doc.source, other)])
    assert errors == [
        f"{LABEL}: data: use stringData with placeholders (data would hold base64 values)",
        f"{LABEL}: stringData.REDIS_URL: must be a placeholder <generate: ...>, <input: ...>"
        " or <value: ...>, not a value",
        "secrets/secret-app.template.yaml: ConfigMap c: kind: a secret template holds only"
        " v1 Secrets",
    ]


def test_encrypted_file_passes_and_plaintext_is_refused() -> None:
    assert sops.encryption_problems(ENCRYPTED, "secrets/x.sops.yaml") == []
    plain = ENCRYPTED.replace("ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]",
                              "mongodb://user:pw@db", 1)
    assert sops.encryption_problems(plain, "secrets/x.sops.yaml") == [
        "secrets/x.sops.yaml: Secret app-config: stringData.MONGODB_URI: plaintext value"
        " (must be ENC[AES256_GCM,...])"]
    unencrypted = ENCRYPTED.split("sops:")[0]
    assert sops.encryption_problems(unencrypted, "s.sops.yaml")[0] == (
        "s.sops.yaml: Secret app-config: sops: missing or without age recipients and MAC:"
        " not encrypted with `sops --encrypt`")
    other_regex = ENCRYPTED.replace("^(data|stringData)$", "^data$")
    assert sops.encryption_problems(other_regex, "s.sops.yaml") == [
        "s.sops.yaml: Secret app-config: sops.encrypted_regex: must be ^(data|stringData)$"]


def test_committed_sops_files_are_encrypted() -> None:
    problems = [line for path in sops.encrypted_files()
                for line in sops.encryption_problems(path.read_text(), f"secrets/{path.name}")]
    assert problems == []


def test_encrypted_files_and_stems(tmp_path: Path) -> None:
    for name in ("secret-a.sops.yaml", ".sops.yaml", "secret-b.template.yaml"):
        (tmp_path / name).write_text("x: 1\n")
    assert [p.name for p in sops.encrypted_files(tmp_path)] == ["secret-a.sops.yaml"]
    assert sops.stem(tmp_path / "secret-a.sops.yaml") == "secret-a"
    assert sops.stem(tmp_path / "secret-b.template.yaml") == "secret-b"
