"""The apps component: our chart through real `helm template`, values from the inventory."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.engine.errors import UserError
from tasks.model.fields import build
from tasks.model.model import SPEC_TOPICS, Inventory
from tasks.stack import helm
from tasks.stack.components import apps
from tasks.stack.render import Bundle, Document
from tasks.stack.validate import policy
from tests.unit.platform_ctx import ctx_of, inventory


@pytest.fixture(scope="module")
def ctx() -> dict[str, Any]:
    return ctx_of(inventory())


@pytest.fixture(scope="module")
def bundle(ctx: dict[str, Any]) -> Bundle:
    return apps.render(ctx)


def find(bundle: Bundle, kind: str, name: str) -> list[dict[str, Any]]:
    return [d.obj for d in bundle.documents if d.kind == kind and d.name == name]


def one(bundle: Bundle, kind: str, name: str) -> dict[str, Any]:
    (obj,) = find(bundle, kind, name)
    return obj


def container(bundle: Bundle, name: str) -> dict[str, Any]:
    (c,) = one(bundle, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    return c


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


# Rendering: every spec number ------------------------------------------------------------

def test_objects_and_sources(bundle: Bundle) -> None:
    kinds = sorted((d.kind, d.name, d.source) for d in bundle.documents)
    t = "charts/apps/templates"
    assert kinds == sorted([
        ("Namespace", "app", "manifests/apps/namespace.yaml"),
        ("Deployment", "api-gateway", f"{t}/deployment.yaml"),
        ("Deployment", "api-generation", f"{t}/deployment.yaml"),
        ("Deployment", "api-enrichment", f"{t}/deployment.yaml"),
        ("Service", "api-gateway", f"{t}/service.yaml"),
        ("Ingress", "api-gateway", f"{t}/ingress.yaml"),
        ("HorizontalPodAutoscaler", "api-gateway", f"{t}/hpa.yaml"),
        ("PodDisruptionBudget", "api-gateway", f"{t}/pdb.yaml"),
    ])
    assert bundle.documents[0].kind == "Namespace"
    ns = bundle.documents[0].obj["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(d.namespace == "app" for d in bundle.documents[1:])


def test_gateway_deployment(bundle: Bundle) -> None:
    deploy = one(bundle, "Deployment", "api-gateway")
    assert "replicas" not in deploy["spec"]  # the HPA owns the count (min 2, below)
    c = container(bundle, "api-gateway")
    assert c["image"] == "ghcr.io/team-mercurious/api-gateway:1.0.0"
    assert c["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert c["resources"] == {"requests": {"memory": "256Mi", "cpu": "100m"},
                              "limits": {"memory": "512Mi", "cpu": "500m"}}
    http = {"path": "/", "port": "http"}
    assert c["startupProbe"]["httpGet"] == http
    assert c["startupProbe"]["failureThreshold"] == 30
    assert c["readinessProbe"]["httpGet"] == http
    assert c["readinessProbe"]["periodSeconds"] == 10
    assert c["livenessProbe"]["httpGet"] == http
    assert c["livenessProbe"]["periodSeconds"] == 30
    annotations = deploy["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "3000",
                           "prometheus.io/path": "/metrics"}


def test_gateway_service_ingress_hpa_pdb(bundle: Bundle) -> None:
    svc = one(bundle, "Service", "api-gateway")
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http",
                                     "protocol": "TCP"}]
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "api-gateway",
                                       "app.kubernetes.io/instance": "apps"}
    ing = one(bundle, "Ingress", "api-gateway")
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == (
        "letsencrypt-prod")
    assert ing["spec"]["ingressClassName"] == "traefik"
    assert ing["spec"]["tls"] == [{"hosts": ["api.example.com"],
                                   "secretName": "api-gateway-tls"}]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "api.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "api-gateway",
                                                              "port": {"name": "http"}}
    hpa = one(bundle, "HorizontalPodAutoscaler", "api-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "api-gateway"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["resource"] == {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    pdb = one(bundle, "PodDisruptionBudget", "api-gateway")
    assert pdb["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("name", ["api-gateway", "api-generation", "api-enrichment"])
def test_pods_restricted_and_wired(bundle: Bundle, name: str) -> None:
    pod = one(bundle, "Deployment", name)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["imagePullSecrets"] == [{"name": "ghcr-pull"}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(bundle, name)
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    assert set(c["resources"]["limits"]) == {"cpu", "memory"}
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    values = env(c)
    assert values["KAFKA_BROKERS"] == "my-cluster-kafka-bootstrap.kafka.svc:9092"
    assert values["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert values["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert values["KAFKA_USERNAME"] == "app-client"
    assert values["KAFKA_PASSWORD"] == {"secretKeyRef": {"name": "kafka-app-client",
                                                         "key": "password"}}
    assert values["KAFKA_GROUP_ID"] == name


def test_gateway_secrets_from_app_config(bundle: Bundle) -> None:
    values = env(container(bundle, "api-gateway"))
    for key in ("MONGODB_URI", "REDIS_URL", "BETTER_AUTH_SECRET", "BETTER_AUTH_URL"):
        assert values[key] == {"secretKeyRef": {"name": "app-config", "key": key}}
    assert values["KAFKA_TOPICS"] == ",".join(SPEC_TOPICS)


@pytest.mark.parametrize(("name", "prefix"), [("api-generation", "travel-generation."),
                                              ("api-enrichment", "travel-enrichment.")])
def test_workers(bundle: Bundle, name: str, prefix: str) -> None:
    deploy = one(bundle, "Deployment", name)
    assert deploy["spec"]["replicas"] == 1
    c = container(bundle, name)
    assert env(c)["KAFKA_TOPICS"] == f"{prefix}progress,{prefix}completed"
    assert "ports" not in c
    probe = {"exec": {"command": ["sh", "-c", KAFKA_CONNECTED]}, "timeoutSeconds": 3}
    assert c["startupProbe"] == {**probe, "periodSeconds": 10, "failureThreshold": 30}
    assert c["readinessProbe"] == {**probe, "periodSeconds": 10, "failureThreshold": 3}
    assert c["livenessProbe"] == {**probe, "periodSeconds": 30, "failureThreshold": 10}
    assert "annotations" not in deploy["metadata"]  # no stack.io/probes-exempt any more
    assert "MONGODB_URI" not in env(c)
    for kind in ("Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert find(bundle, kind, name) == []


# The workers' probe: an ESTABLISHED TCP connection to the Kafka port (9092 = 0x2384) in the
# pod's /proc/net/tcp or tcp6, read by /bin/sh alone. Lines as the kernel prints them.
KAFKA_CONNECTED = (
    "p=$(printf %04X 9092) && for f in /proc/net/tcp /proc/net/tcp6; do [ -r \"$f\" ] ||"
    " continue; while read -r _ _ r s _; do case $r:$s in *:\"$p\":01) exit 0;; esac;"
    " done < \"$f\"; done; exit 1")
TCP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
              "   uid  timeout inode\n")


def tcp_line(local: str, remote: str, state: str) -> str:
    return (f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000  1000"
            "        0 48213 1 0000000000000000 20 4 30 10 -1\n")


@pytest.mark.parametrize(("tcp", "tcp6", "rc"), [
    # connected to the bootstrap/broker on 9092: ESTABLISHED (01)
    (tcp_line("0A2A0007:A1F2", "0A2B0010:2384", "01"), None, 0),
    # the same over IPv6 (an IPv4-mapped address in tcp6), tcp empty
    ("", tcp_line("0000000000000000FFFF00000A2A0007:A1F2",
                  "0000000000000000FFFF00000A2B0010:2384", "01"), 0),
    # SYN_SENT (02): the broker does not answer yet
    (tcp_line("0A2A0007:A1F2", "0A2B0010:2384", "02"), "", 1),
    # TIME_WAIT (06) after the broker closed the connection (SCRAM refused)
    (tcp_line("0A2A0007:A1F2", "0A2B0010:2384", "06"), "", 1),
    # ESTABLISHED, but to another port (MongoDB 27017 = 0x6989)
    (tcp_line("0A2A0007:A1F2", "0A2B0010:6989", "01"), "", 1),
    # 9092 as the *local* port does not count
    (tcp_line("0A2A0007:2384", "0A2B0010:A1F2", "01"), "", 1),
    # no IPv6 in the pod: tcp6 missing is not an error
    ("", None, 1),
])
def test_the_kafka_probe_reads_established_connections(
        tmp_path: Path, tcp: str, tcp6: str | None, rc: int) -> None:
    (tmp_path / "tcp").write_text(TCP_HEADER + tcp)
    if tcp6 is not None:
        (tmp_path / "tcp6").write_text(TCP_HEADER + tcp6)
    script = KAFKA_CONNECTED.replace("/proc/net/", f"{tmp_path}/")
    assert subprocess.run(["sh", "-c", script], check=False).returncode == rc


def test_every_workload_meets_the_validate_policy(bundle: Bundle) -> None:
    workloads = [d for d in bundle.documents if d.kind == "Deployment"]
    assert [d.name for d in workloads] == ["api-enrichment", "api-gateway", "api-generation"]
    assert [line for d in workloads for line in policy.check(d)] == []


def test_variant_domain_issuer_and_replicas() -> None:
    data = inventory(domain="travel.example.org", certs={"issuer": "letsencrypt-staging"})
    data["apps"]["api_gateway"]["replicas"] = 3
    data["apps"]["api_generation"]["replicas"] = 2
    ctx = ctx_of(data)
    bundle = apps.render(ctx)
    ing = one(bundle, "Ingress", "api-gateway")
    assert ing["spec"]["rules"][0]["host"] == "api.travel.example.org"
    assert ing["spec"]["tls"][0]["hosts"] == ["api.travel.example.org"]
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == (
        "letsencrypt-staging")
    assert one(bundle, "HorizontalPodAutoscaler", "api-gateway")["spec"]["minReplicas"] == 3
    assert one(bundle, "Deployment", "api-generation")["spec"]["replicas"] == 2
    # two workers replicas: now a budget makes sense
    assert one(bundle, "PodDisruptionBudget", "api-generation")["spec"]["minAvailable"] == 1
    assert apps.checks(bundle, ctx) == []


def test_explicit_host_and_namespace() -> None:
    data = inventory()
    data["apps"] = {**data["apps"], "host": "gateway.example.net", "namespace": "travel"}
    bundle = apps.render(ctx_of(data))
    assert one(bundle, "Ingress", "api-gateway")["spec"]["rules"][0]["host"] == (
        "gateway.example.net")
    assert one(bundle, "Namespace", "travel")
    assert {d.namespace for d in bundle.documents if d.kind != "Namespace"} == {"travel"}


# Images: pinned, never :latest, never missing ----------------------------------------------

def test_latest_refused_by_inventory_validation() -> None:
    data = inventory()
    data["apps"]["api_gateway"]["image"] = "ghcr.io/team-mercurious/api-gateway:latest"
    _, errors = build(Inventory, data)
    assert len(errors) == 1
    assert errors[0].startswith("apps.api_gateway.image: expected an image with a pinned tag")


def test_untagged_image_refused_by_inventory_validation() -> None:
    data = inventory()
    data["apps"]["api_enrichment"]["image"] = "ghcr.io/team-mercurious/api-enrichment"
    _, errors = build(Inventory, data)
    assert [e.split(":")[0] for e in errors] == ["apps.api_enrichment.image"]


def test_missing_image_is_a_clear_error() -> None:
    data = inventory()
    del data["apps"]["api_generation"]["image"]
    with pytest.raises(UserError) as exc:
        apps.render(ctx_of(data))
    assert exc.value.lines == [
        "inventory.yaml: apps.api_generation.image: required: the image to run, with a"
        " pinned tag or digest (e.g. ghcr.io/team-mercurious/api-generation:1.0.0)"]


def test_chart_schema_refuses_latest_too(ctx: dict[str, Any]) -> None:
    values = apps.values(ctx)
    values["apps"]["api-gateway"]["image"] = "ghcr.io/team-mercurious/api-gateway:latest"
    errors = helm.lint(apps.CHART, values)
    # helm 4 names the field /apps/api-gateway/image, helm 3 apps.api-gateway.image
    assert any("api-gateway" in e and "image" in e for e in errors), errors
    with pytest.raises(UserError, match="helm template failed"):
        helm.template(apps.CHART, "apps", "app", values)


def test_helm_lint_strict_passes(ctx: dict[str, Any]) -> None:
    assert helm.lint(apps.CHART, apps.values(ctx)) == []


# Semantic checks: each rule catches a broken object -----------------------------------

def test_default_bundle_passes_checks(bundle: Bundle, ctx: dict[str, Any]) -> None:
    assert apps.checks(bundle, ctx) == []


def broken(bundle: Bundle, kind: str, name: str,
           change: Callable[[dict[str, Any]], None]) -> Bundle:
    docs = []
    for doc in bundle.documents:
        obj = copy.deepcopy(doc.obj)
        if doc.kind == kind and doc.name == name:
            change(obj)
        docs.append(Document(doc.source, obj))
    return Bundle(documents=docs)


def errors_of(bundle: Bundle, ctx: dict[str, Any], kind: str, name: str,
              change: Callable[[dict[str, Any]], None]) -> list[str]:
    return apps.checks(broken(bundle, kind, name, change), ctx)


def first_container(o: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = o["spec"]["template"]["spec"]["containers"][0]
    return c


def set_env(o: dict[str, Any], name: str, value: str) -> None:
    for e in first_container(o)["env"]:
        if e["name"] == name:
            e["value"] = value


D = "charts/apps/templates/deployment.yaml: Deployment"


def test_service_target_port_unknown(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["ports"][0]["targetPort"] = 8080
    assert errors_of(bundle, ctx, "Service", "api-gateway", wrong) == [
        "charts/apps/templates/service.yaml: Service api-gateway: spec.ports[0].targetPort:"
        " 8080 is not a container port of the selected pods"]


def test_service_selects_nothing(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["selector"] = {"app.kubernetes.io/name": "api-gatewy"}
    assert errors_of(bundle, ctx, "Service", "api-gateway", wrong) == [
        "charts/apps/templates/service.yaml: Service api-gateway: spec.selector: selects no"
        " Deployment's pods"]


def test_ingress_wrong_issuer(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] = "letsencrypt-staging"
    assert errors_of(bundle, ctx, "Ingress", "api-gateway", wrong) == [
        "charts/apps/templates/ingress.yaml: Ingress api-gateway: metadata.annotations."
        "cert-manager.io/cluster-issuer: must be letsencrypt-prod (inventory certs.issuer),"
        " got letsencrypt-staging"]


def test_ingress_host_without_tls(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["rules"][0]["host"] = "www.example.com"
    assert errors_of(bundle, ctx, "Ingress", "api-gateway", wrong) == [
        "charts/apps/templates/ingress.yaml: Ingress api-gateway: spec.rules[0].host:"
        " www.example.com has no TLS entry with a secretName"]


def test_ingress_backend_missing(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {
            "number": 3000}
    assert errors_of(bundle, ctx, "Ingress", "api-gateway", wrong) == [
        "charts/apps/templates/ingress.yaml: Ingress api-gateway: spec.rules[0].http"
        ".paths[0].backend.service.port: not a port of Service api-gateway"]


def test_hpa_target_missing(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["scaleTargetRef"]["name"] = "gateway"
    errors = errors_of(bundle, ctx, "HorizontalPodAutoscaler", "api-gateway", wrong)
    assert (
        "charts/apps/templates/hpa.yaml: HorizontalPodAutoscaler api-gateway:"
        " spec.scaleTargetRef.name: no Deployment gateway") in errors
    # without its HPA the gateway falls back to one replica: below the inventory's 2
    assert f"{D} api-gateway: spec.replicas: 1 differs from inventory" \
           " apps.api_gateway.replicas 2" in errors


def test_hpa_min_above_max(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["maxReplicas"] = 1
    assert errors_of(bundle, ctx, "HorizontalPodAutoscaler", "api-gateway", wrong) == [
        "charts/apps/templates/hpa.yaml: HorizontalPodAutoscaler api-gateway:"
        " spec.minReplicas: 2 is above maxReplicas 1"]


def test_replicas_fight_the_hpa(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["replicas"] = 2
    assert errors_of(bundle, ctx, "Deployment", "api-gateway", wrong) == [
        f"{D} api-gateway: spec.replicas: must be left to HPA api-gateway (every apply would"
        " reset the scaled count)"]


def test_hpa_needs_cpu_requests(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        del first_container(o)["resources"]["requests"]["cpu"]
    assert errors_of(bundle, ctx, "Deployment", "api-gateway", wrong) == [
        "charts/apps/templates/hpa.yaml: HorizontalPodAutoscaler api-gateway: spec.metrics:"
        f" CPU utilization needs CPU requests on every container of {D} api-gateway"]


def test_pdb_blocking_drains(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["minAvailable"] = 2
    assert errors_of(bundle, ctx, "PodDisruptionBudget", "api-gateway", wrong) == [
        "charts/apps/templates/pdb.yaml: PodDisruptionBudget api-gateway: spec.minAvailable:"
        " 2 must be below the 2 replica(s) of api-gateway, or no pod can ever be evicted"]


def test_pdb_selects_nothing(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["selector"]["matchLabels"] = {"app": "x"}
    assert errors_of(bundle, ctx, "PodDisruptionBudget", "api-gateway", wrong) == [
        "charts/apps/templates/pdb.yaml: PodDisruptionBudget api-gateway: spec.selector:"
        " selects no Deployment's pods"]


def test_image_drift(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        first_container(o)["image"] = "ghcr.io/team-mercurious/api-enrichment:0.9.0"
    assert errors_of(bundle, ctx, "Deployment", "api-enrichment", wrong) == [
        f"{D} api-enrichment: spec.template.spec.containers[0].image:"
        " ghcr.io/team-mercurious/api-enrichment:0.9.0 differs from inventory"
        " apps.api_enrichment.image ghcr.io/team-mercurious/api-enrichment:1.0.0"]


def test_replicas_drift(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["replicas"] = 3
    assert errors_of(bundle, ctx, "Deployment", "api-generation", wrong) == [
        f"{D} api-generation: spec.replicas: 3 differs from inventory"
        " apps.api_generation.replicas 1"]


def test_unknown_topic(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        set_env(o, "KAFKA_TOPICS", "travel-generation.progress,travel-generation.done")
    assert errors_of(bundle, ctx, "Deployment", "api-generation", wrong) == [
        f"{D} api-generation: spec.template.spec.containers[0].env.KAFKA_TOPICS:"
        " travel-generation.done is not an inventory topic (kafka.topics)"]


def test_group_without_acl(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        set_env(o, "KAFKA_GROUP_ID", "enrichment")
    assert errors_of(bundle, ctx, "Deployment", "api-enrichment", wrong) == [
        f"{D} api-enrichment: spec.template.spec.containers[0].env.KAFKA_GROUP_ID: the"
        " KafkaUser app-client has no Read ACL for group enrichment"]


def test_wrong_bootstrap(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        set_env(o, "KAFKA_BROKERS", "my-cluster-kafka-bootstrap.kafka.svc:9093")
    assert errors_of(bundle, ctx, "Deployment", "api-gateway", wrong) == [
        f"{D} api-gateway: spec.template.spec.containers[0].env.KAFKA_BROKERS: must be"
        " my-cluster-kafka-bootstrap.kafka.svc:9092 (the Kafka bootstrap), got"
        " my-cluster-kafka-bootstrap.kafka.svc:9093"]


def test_missing_deployment(bundle: Bundle, ctx: dict[str, Any]) -> None:
    without = Bundle(documents=[d for d in bundle.documents
                                if (d.kind, d.name) != ("Deployment", "api-generation")])
    assert apps.checks(without, ctx) == [
        "charts/apps: Deployment api-generation: missing (inventory apps.api_generation)"]


def test_ingress_backend_service_missing(bundle: Bundle, ctx: dict[str, Any]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "api-gatewy"
    assert errors_of(bundle, ctx, "Ingress", "api-gateway", wrong) == [
        "charts/apps/templates/ingress.yaml: Ingress api-gateway: spec.rules[0].http"
        ".paths[0].backend.service.name: no Service api-gatewy"]


PDB = "charts/apps/templates/pdb.yaml: PodDisruptionBudget api-gateway"


@pytest.mark.parametrize(("budget", "expected"), [
    ({"minAvailable": "100%"},
     [f"{PDB}: spec.minAvailable: 100% must be below the 2 replica(s) of api-gateway, or no"
      " pod can ever be evicted"]),
    ({"minAvailable": "51%"},  # rounded up, as the disruption controller does: 2 of 2
     [f"{PDB}: spec.minAvailable: 51% must be below the 2 replica(s) of api-gateway, or no"
      " pod can ever be evicted"]),
    ({"minAvailable": "50%"}, []),
    ({"maxUnavailable": 0},
     [f"{PDB}: spec.maxUnavailable: 0 must be above 0, or no pod can ever be evicted"]),
    ({"maxUnavailable": "0%"},
     [f"{PDB}: spec.maxUnavailable: 0% must be above 0, or no pod can ever be evicted"]),
    ({"maxUnavailable": 1}, []),
    ({"maxUnavailable": "10%"}, []),  # rounded up: 1 pod
])
def test_pdb_budgets_that_block_drains(bundle: Bundle, ctx: dict[str, Any],
                                       budget: dict[str, Any], expected: list[str]) -> None:
    def wrong(o: dict[str, Any]) -> None:
        del o["spec"]["minAvailable"]
        o["spec"].update(budget)
    assert errors_of(bundle, ctx, "PodDisruptionBudget", "api-gateway", wrong) == expected


# What apps.deploy installs ------------------------------------------------------------------

def test_the_release_is_our_chart_with_the_values_validate_renders(ctx: dict[str, Any]) -> None:
    rel = apps.release(ctx)
    assert (rel.name, rel.namespace, rel.chart, rel.version, rel.values_source) == (
        "apps", "app", "apps", "0.1.0", "helm-values/apps.yaml")
    assert rel.values == apps.values(ctx)


def test_certificates_are_named_after_the_ingress_tls_secret(bundle: Bundle,
                                                             ctx: dict[str, Any]) -> None:
    tls = one(bundle, "Ingress", "api-gateway")["spec"]["tls"]
    assert apps.certificates(apps.values(ctx)) == [
        (t["secretName"], t["hosts"]) for t in tls] == [("api-gateway-tls", ["api.example.com"])]


def test_the_secrets_the_pods_read(bundle: Bundle, ctx: dict[str, Any]) -> None:
    assert apps.secret_names(apps.values(ctx)) == ["ghcr-pull", "kafka-app-client", "app-config"]
    pods = [d.obj["spec"]["template"]["spec"] for d in bundle.documents if d.kind == "Deployment"]
    read = {s["name"] for p in pods for s in p["imagePullSecrets"]} | {
        e["valueFrom"]["secretKeyRef"]["name"] for p in pods for c in p["containers"]
        for e in c["env"] if "valueFrom" in e}
    assert read == set(apps.secret_names(apps.values(ctx)))


def test_values_are_plain_data_without_shared_parts(ctx: dict[str, Any]) -> None:
    values = apps.values(ctx)
    probes = values["apps"]["api-generation"]["probes"]
    probes["readinessProbe"]["exec"]["command"].append("changed")
    assert values["apps"]["api-enrichment"]["probes"]["readinessProbe"]["exec"]["command"][-1] \
        == KAFKA_CONNECTED


# apps.deploy upgrades the release when helm reports another chart version or other values
# (tasks/cluster/steps.py HelmReleaseStep): a template changed under the same version would
# never reach the cluster. So each version pins the chart's content: change the chart, bump
# `version` in charts/apps/Chart.yaml and add its digest here.
CHART_DIGESTS = {"0.1.0": "11efb3f853427da1f032c7df3120616027165249ac706175967ea76af95ef8cf"}


def test_a_chart_change_comes_with_a_version_bump() -> None:
    import hashlib

    digest = hashlib.sha256()
    files = sorted(p for p in apps.CHART.rglob("*") if p.is_file() and "__pycache__" not in
                   p.parts)
    for path in files:
        digest.update(str(path.relative_to(apps.CHART)).encode() + b"\0" + path.read_bytes()
                      + b"\0")
    version = apps.chart_version()
    assert CHART_DIGESTS.get(version) == digest.hexdigest(), (
        f"charts/apps changed: bump its version (now {version}) in charts/apps/Chart.yaml and"
        f" pin {digest.hexdigest()} for it in CHART_DIGESTS, or apps.deploy will not upgrade")
