"""What the API server refuses beyond the schema, table-tested on the valid fixture."""

from __future__ import annotations

from typing import Any

import pytest
from validate_fixtures import DELETE, SOURCE, find, valid_documents, with_object

from tasks.stack.validate import apiserver, validate_documents

POD = ("spec", "template", "spec")
C0 = (*POD, "containers", 0)

CASES: list[tuple[str, tuple[str | int, ...], Any, list[str]]] = [
    ("Deployment", ("spec", "selector", "matchLabels", "app.kubernetes.io/name"), "gateway",
     ["spec.selector.matchLabels['app.kubernetes.io/name']: 'gateway' does not match the pod"
      " template's label ('api-gateway'): the API refuses it"]),
    ("Deployment", ("spec", "selector"), {},
     ["spec.selector: must select pods (matchLabels or matchExpressions)"]),
    ("Deployment", (*POD, "initContainers"), [{"name": "api-gateway", "image": "x:1"}],
     ["spec.template.spec.containers[0].name: duplicate container name 'api-gateway'"]),
    ("Deployment", (*C0, "name"), "API",
     ["spec.template.spec.containers[0].name: 'API' is not a DNS label"]),
    ("Deployment", (*C0, "ports", 0, "containerPort"), 70000,
     ["spec.template.spec.containers[0].ports[0].containerPort: must be between 1 and 65535;"
      " got 70000"]),
    ("Deployment", (*C0, "ports", 0, "name"), "http-api-gateway",
     ["spec.template.spec.containers[0].ports[0].name: 'http-api-gateway' is not an IANA"
      " service name (at most 15 lowercase letters, digits and '-', with a letter)"]),
    ("Deployment", (*C0, "ports", 0, "protocol"), "HTTP",
     ["spec.template.spec.containers[0].ports[0].protocol: must be one of TCP, UDP, SCTP;"
      " got 'HTTP'"]),
    ("Service", ("spec", "ports", 0, "port"), 0,
     ["spec.ports[0].port: must be between 1 and 65535; got 0"]),
    ("Service", ("spec", "ports", 0, "nodePort"), 8080,
     ["spec.ports[0].nodePort: must be between 30000 and 32767; got 8080"]),
    ("Service", ("spec", "ports", 0, "targetPort"), "Http",
     ["spec.ports[0].targetPort: 'Http' is not an IANA service name (at most 15 lowercase"
      " letters, digits and '-', with a letter)"]),
    ("HorizontalPodAutoscaler", ("spec", "metrics", 0, "resource", "target", "type"),
     "Utilisation",
     ["spec.metrics[0].resource.target.type: must be one of Utilization, Value, AverageValue;"
      " got 'Utilisation'"]),
    ("HorizontalPodAutoscaler", ("spec", "minReplicas"), 5,
     ["spec.minReplicas: 5 is above maxReplicas 4"]),
    ("PodDisruptionBudget", ("spec", "maxUnavailable"), 1,
     ["spec: minAvailable and maxUnavailable cannot both be set"]),
    ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0, "name"),
     "Cleanup",
     ["spec.jobTemplate.spec.template.spec.containers[0].name: 'Cleanup' is not a DNS"
      " label"]),
    ("Deployment", ("spec", "selector", "matchLabels"), DELETE,
     ["spec.selector: must select pods (matchLabels or matchExpressions)"]),
]


# Each remaining branch broken alone.
CASES += [
    ("Deployment", (*C0, "ports", 0, "hostPort"), 65536,
     ["spec.template.spec.containers[0].ports[0].hostPort: must be between 1 and 65535;"
      " got 65536"]),
    ("Deployment", (*C0, "ports", 0, "containerPort"), 0,
     ["spec.template.spec.containers[0].ports[0].containerPort: must be between 1 and"
      " 65535; got 0"]),
    ("Deployment", (*C0, "ports", 0, "name"), "8080",
     ["spec.template.spec.containers[0].ports[0].name: '8080' is not an IANA service name"
      " (at most 15 lowercase letters, digits and '-', with a letter)"]),
    ("Deployment", (*C0, "ports", 0, "name"), "http--api",
     ["spec.template.spec.containers[0].ports[0].name: 'http--api' is not an IANA service"
      " name (at most 15 lowercase letters, digits and '-', with a letter)"]),
    ("Deployment", (*C0, "name"), "a" * 64,
     [f"spec.template.spec.containers[0].name: {'a' * 64!r} is not a DNS label"]),
    ("Service", ("spec", "ports", 0, "port"), 65536,
     ["spec.ports[0].port: must be between 1 and 65535; got 65536"]),
    ("Service", ("spec", "ports", 0, "nodePort"), 32768,
     ["spec.ports[0].nodePort: must be between 30000 and 32767; got 32768"]),
    ("Service", ("spec", "ports", 0, "targetPort"), 0,
     ["spec.ports[0].targetPort: must be between 1 and 65535; got 0"]),
    ("Service", ("spec", "ports", 0, "name"), "HTTP",
     ["spec.ports[0].name: 'HTTP' is not a DNS label (at most 63 lowercase letters, digits"
      " and '-')"]),
    ("Service", ("spec", "ports", 0, "name"), "tcp-prometheus-servicemonitor", []),
    ("Service", ("spec", "ports", 0, "name"), "p" * 64,
     [f"spec.ports[0].name: '{'p' * 64}' is not a DNS label (at most 63 lowercase letters,"
      " digits and '-')"]),
    ("Service", ("spec", "ports", 0, "protocol"), "tcp",
     ["spec.ports[0].protocol: must be one of TCP, UDP, SCTP; got 'tcp'"]),
    ("PodDisruptionBudget", ("spec", "minAvailable"), DELETE, []),
    ("Deployment", ("spec", "selector"), {"matchExpressions": [
        {"key": "app.kubernetes.io/name", "operator": "Exists"}]}, []),
    ("Service", ("spec", "ports", 0, "nodePort"), 30000, []),
    ("Service", ("spec", "ports", 0, "targetPort"), 3000, []),
]


@pytest.mark.parametrize(("kind", "path", "value", "expected"), CASES,
                         ids=[f"{c[0]}-{'.'.join(map(str, c[1]))}" for c in CASES])
def test_refused_by_the_api_server(kind: str, path: tuple[str | int, ...], value: Any,
                                   expected: list[str]) -> None:
    assert apiserver.check(find(with_object(kind, path, value), kind)) == expected


def test_the_valid_fixture_passes() -> None:
    assert [line for d in valid_documents() for line in apiserver.check(d)] == []


def test_lines_name_file_and_object_in_a_run() -> None:
    docs = with_object("Service", ("spec", "ports", 0, "port"), 0)
    found, _ = validate_documents(docs, namespaces=False)
    assert f"{SOURCE}: Service api-gateway: spec.ports[0].port: must be between 1 and 65535;"\
        " got 0" in found
