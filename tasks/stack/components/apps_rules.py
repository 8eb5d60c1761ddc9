"""Rules tying the rendered application objects together and to the inventory.

Schemas see one object at a time; these see the set: a Service that selects no pod or
targets no container port, an Ingress whose backend or certificate does not match, an
HPA or PodDisruptionBudget aimed at nothing (or blocking every drain), an app whose
image, replicas or Kafka settings drifted from the inventory. Errors name the file,
the object and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tasks.stack.render import Document, dig, of_kind
from tasks.stack.workloads import APP_KEYS, app_name

ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"



def _pod_labels(deploy: Document) -> dict[str, str]:
    return dig(deploy.obj, "spec", "template", "metadata", "labels") or {}


def _containers(deploy: Document) -> list[dict[str, Any]]:
    return dig(deploy.obj, "spec", "template", "spec", "containers") or []


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e.get("name"): e.get("value") for e in container.get("env") or []}


def _selected(selector: Mapping[str, str], docs: list[Document]) -> list[Document]:
    return [d for d in of_kind(docs, "Deployment") if selector
            and all(_pod_labels(d).get(k) == v for k, v in selector.items())]


def _replicas(deploy: Document, docs: list[Document]) -> int:
    """Spec replicas, or the minimum of the HPA that owns the count."""
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        if dig(hpa.obj, "spec", "scaleTargetRef", "name") == deploy.name:
            return int(dig(hpa.obj, "spec", "minReplicas") or 1)
    return int(dig(deploy.obj, "spec", "replicas") or 1)


def check(docs: list[Document], ctx: Mapping[str, Any]) -> list[str]:
    return [*inventory_apps(docs, ctx), *services(docs), *ingresses(docs, ctx),
            *autoscalers(docs), *disruption_budgets(docs)]


def _group_allowed(group: str, acls: list[dict[str, Any]]) -> bool:
    for rule in acls:
        resource = rule.get("resource") or {}
        if resource.get("type") != "group" or "Read" not in (rule.get("operations") or []):
            continue
        name = str(resource.get("name"))
        if group == name or (resource.get("patternType") == "prefix" and group.startswith(name)):
            return True
    return False


def inventory_apps(docs: list[Document], ctx: Mapping[str, Any]) -> list[str]:
    """Each inventory app runs its image and replicas, with Kafka settings that work."""
    out = []
    deployments = {d.name: d for d in of_kind(docs, "Deployment")}
    derived = ctx["derived"]
    for key in APP_KEYS:
        app = ctx["apps"][key]
        deploy = deployments.get(app_name(key))
        if deploy is None:
            out.append(f"charts/apps: Deployment {app_name(key)}: missing (inventory apps.{key})")
            continue
        if _replicas(deploy, docs) != app["replicas"]:
            out.append(f"{deploy.label}: spec.replicas: {_replicas(deploy, docs)} differs from"
                       f" inventory apps.{key}.replicas {app['replicas']}")
        for i, container in enumerate(_containers(deploy)):
            where = f"{deploy.label}: spec.template.spec.containers[{i}]"
            if container.get("image") != app["image"]:
                out.append(f"{where}.image: {container.get('image')} differs from inventory"
                           f" apps.{key}.image {app['image']}")
            env = _env(container)
            if env.get("KAFKA_BROKERS") != derived["kafka_bootstrap"]:
                out.append(f"{where}.env.KAFKA_BROKERS: must be {derived['kafka_bootstrap']}"
                           f" (the Kafka bootstrap), got {env.get('KAFKA_BROKERS')}")
            for topic in filter(None, str(env.get("KAFKA_TOPICS") or "").split(",")):
                if topic not in ctx["kafka"]["topics"]:
                    out.append(f"{where}.env.KAFKA_TOPICS: {topic} is not an inventory topic"
                               " (kafka.topics)")
            group = env.get("KAFKA_GROUP_ID")
            if group is not None and not _group_allowed(str(group), derived["kafka_acls"]):
                out.append(f"{where}.env.KAFKA_GROUP_ID: the KafkaUser {ctx['kafka']['user']}"
                           f" has no Read ACL for group {group}")
    return out


def _ports(deploy: Document) -> list[dict[str, Any]]:
    return [p for c in _containers(deploy) for p in c.get("ports") or []]


def services(docs: list[Document]) -> list[str]:
    """A Service selects pods and targets a port they declare."""
    out = []
    for svc in of_kind(docs, "Service"):
        selector = dig(svc.obj, "spec", "selector") or {}
        pods = _selected(selector, docs)
        if not pods:
            out.append(f"{svc.label}: spec.selector: selects no Deployment's pods")
            continue
        declared = {v for d in pods for p in _ports(d) for v in (p.get("name"),
                                                                   p.get("containerPort"))}
        for i, port in enumerate(dig(svc.obj, "spec", "ports") or []):
            target = port.get("targetPort", port.get("port"))
            if target not in declared:
                out.append(f"{svc.label}: spec.ports[{i}].targetPort: {target} is not a"
                           " container port of the selected pods")
    return out


def ingresses(docs: list[Document], ctx: Mapping[str, Any]) -> list[str]:
    """Backends exist; every host has TLS from the inventory's issuer."""
    out = []
    svcs = {s.name: s for s in of_kind(docs, "Service")}
    issuer = ctx["certs"]["issuer"]
    for ing in of_kind(docs, "Ingress"):
        got = (dig(ing.obj, "metadata", "annotations") or {}).get(ISSUER_ANNOTATION)
        if got != issuer:
            out.append(f"{ing.label}: metadata.annotations.{ISSUER_ANNOTATION}: must be"
                       f" {issuer} (inventory certs.issuer), got {got}")
        tls_hosts = {h for t in dig(ing.obj, "spec", "tls") or [] if t.get("secretName")
                     for h in t.get("hosts") or []}
        for i, rule in enumerate(dig(ing.obj, "spec", "rules") or []):
            if rule.get("host") not in tls_hosts:
                out.append(f"{ing.label}: spec.rules[{i}].host: {rule.get('host')} has no"
                           " TLS entry with a secretName")
            for j, path in enumerate(dig(rule, "http", "paths") or []):
                where = f"{ing.label}: spec.rules[{i}].http.paths[{j}].backend.service"
                backend = dig(path, "backend", "service") or {}
                svc = svcs.get(str(backend.get("name")))
                if svc is None:
                    out.append(f"{where}.name: no Service {backend.get('name')}")
                    continue
                port = backend.get("port") or {}
                names = {(p.get("name"), p.get("port")) for p in dig(svc.obj, "spec", "ports")
                         or []}
                if not any(port.get("name") == n or port.get("number") == p for n, p in names):
                    out.append(f"{where}.port: not a port of Service {svc.name}")
    return out


def autoscalers(docs: list[Document]) -> list[str]:
    """An HPA scales an existing Deployment whose containers request CPU."""
    out = []
    deployments = {d.name: d for d in of_kind(docs, "Deployment")}
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        target = deployments.get(str(dig(hpa.obj, "spec", "scaleTargetRef", "name")))
        if target is None:
            out.append(f"{hpa.label}: spec.scaleTargetRef.name: no Deployment"
                       f" {dig(hpa.obj, 'spec', 'scaleTargetRef', 'name')}")
            continue
        low, high = dig(hpa.obj, "spec", "minReplicas") or 1, dig(hpa.obj, "spec",
                                                                      "maxReplicas")
        if high is not None and low > high:
            out.append(f"{hpa.label}: spec.minReplicas: {low} is above maxReplicas {high}")
        if "replicas" in (target.obj.get("spec") or {}):
            out.append(f"{target.label}: spec.replicas: must be left to HPA {hpa.name}"
                       " (every apply would reset the scaled count)")
        if any(not dig(c, "resources", "requests", "cpu") for c in _containers(target)):
            out.append(f"{hpa.label}: spec.metrics: CPU utilization needs CPU requests on"
                       f" every container of {target.label}")
    return out


def _pods(value: Any, replicas: int) -> int | None:
    """A PDB count or percentage as pods (percentages round up, as Kubernetes does)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * replicas / 100)
    return None


def disruption_budgets(docs: list[Document]) -> list[str]:
    """A PDB covers pods and leaves room for one eviction (else drains hang)."""
    out = []
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        pods = _selected(dig(pdb.obj, "spec", "selector", "matchLabels") or {}, docs)
        if not pods:
            out.append(f"{pdb.label}: spec.selector: selects no Deployment's pods")
            continue
        need = dig(pdb.obj, "spec", "minAvailable")
        spare = dig(pdb.obj, "spec", "maxUnavailable")
        for deploy in pods:
            replicas = _replicas(deploy, docs)
            wanted = _pods(need, replicas)
            if wanted is not None and wanted >= replicas:
                out.append(f"{pdb.label}: spec.minAvailable: {need} must be below the"
                           f" {replicas} replica(s) of {deploy.name}, or no"
                           " pod can ever be evicted")
            if _pods(spare, replicas) == 0:
                out.append(f"{pdb.label}: spec.maxUnavailable: {spare} must be above 0,"
                           " or no pod can ever be evicted")
    return out
