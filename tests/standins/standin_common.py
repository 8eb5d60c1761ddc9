"""STAND-IN cluster, for tests only: the state shared by the stand-in ``kubectl`` and ``helm``.

Never a real Kubernetes. No cluster can run on our machines, so ``tests/standins/kubectl``
and ``tests/standins/helm`` answer what the cluster steps run, from files in the folder
``$STACK_STANDIN_STATE``:

- ``config.json``: what a test configured (see :data:`DEFAULT_CONFIG`): the versions the
  tools report, which CRDs a chart brings (by chart name), objects a chart creates;
- ``inject.json``: failures to inject (see :func:`injections`);
- ``clock.json``: a monotonic counter bumped by every write; resourceVersions, uids,
  timestamps and Helm revision times derive from it (no wall clock: runs are repeatable);
- ``objects/<Kind>[.<group>]/<namespace or ->/<name>.json``: one object each, as the API
  server would return it (``metadata.managedFields`` included);
- ``releases/<namespace>/<name>.json``: a Helm release and every revision of it;
- ``logs/<namespace>/<pod>/<container>.previous.log``: the log of a container's previous
  instance (``kubectl logs --previous``), as the kubelet keeps it;
- ``calls.jsonl``: one line per invocation (binary, argv, environment, stdin in base64,
  stdout, stderr, exit code), so tests can count calls and look for secrets;
- ``lock``: held for the whole of each invocation, so calls never interleave.

Server-side apply is modelled as the API server does it, simplified: each field manager
owns the leaf fields it set (lists are atomic, as for a list without merge keys); an
apply that changes a field another manager owns is a conflict; an Update (``kubectl
edit``, ``kubectl annotate``) takes over the fields it changes. Controllers settle at
once: status conditions are computed when an object is read (Ready/Available True unless
a test injected a failure; Strimzi's kinds in Strimzi's own shapes, see
:func:`strimzi_status`), and waits never really wait. cert-manager's ingress-shim is one
of them: an annotated Ingress gets its Certificate when it is stored (see
:func:`ingress_shim`).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import fcntl
import io
import json
import os
import re
import shlex
import sys
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

STATE_ENV = "STACK_STANDIN_STATE"
EPOCH = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)

# Kinds every K3s API server serves: "apiVersion[,more versions] Kind plural scope short,names"
# (scope "ns" = namespaced, "-" = cluster-scoped), as `kubectl api-resources` lists them.
BUILTIN_KINDS = """
v1 Namespace namespaces - ns
v1 ConfigMap configmaps ns cm
v1 Secret secrets ns
v1 Service services ns svc
v1 ServiceAccount serviceaccounts ns sa
v1 PersistentVolumeClaim persistentvolumeclaims ns pvc
v1 PersistentVolume persistentvolumes - pv
v1 Pod pods ns po
v1 Node nodes - no
v1 LimitRange limitranges ns limits
v1 ResourceQuota resourcequotas ns quota
v1 Endpoints endpoints ns ep
v1 Event events ns ev
apps/v1 Deployment deployments ns deploy
apps/v1 StatefulSet statefulsets ns sts
apps/v1 DaemonSet daemonsets ns ds
apps/v1 ReplicaSet replicasets ns rs
batch/v1 Job jobs ns
batch/v1 CronJob cronjobs ns cj
networking.k8s.io/v1 Ingress ingresses ns ing
networking.k8s.io/v1 NetworkPolicy networkpolicies ns netpol
networking.k8s.io/v1 IngressClass ingressclasses -
policy/v1 PodDisruptionBudget poddisruptionbudgets ns pdb
autoscaling/v2,v1 HorizontalPodAutoscaler horizontalpodautoscalers ns hpa
rbac.authorization.k8s.io/v1 Role roles ns
rbac.authorization.k8s.io/v1 RoleBinding rolebindings ns
rbac.authorization.k8s.io/v1 ClusterRole clusterroles -
rbac.authorization.k8s.io/v1 ClusterRoleBinding clusterrolebindings -
apiextensions.k8s.io/v1 CustomResourceDefinition customresourcedefinitions - crd,crds
storage.k8s.io/v1 StorageClass storageclasses - sc
scheduling.k8s.io/v1 PriorityClass priorityclasses - pc
admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration validatingwebhookconfigurations -
admissionregistration.k8s.io/v1 MutatingWebhookConfiguration mutatingwebhookconfigurations -
coordination.k8s.io/v1 Lease leases ns
"""

# CRDs a fresh K3s server has (its Helm controller, addons, the bundled Traefik's CRDs).
K3S_CRDS = """
helm.cattle.io/v1 HelmChart helmcharts ns
helm.cattle.io/v1 HelmChartConfig helmchartconfigs ns
k3s.cattle.io/v1 Addon addons ns
k3s.cattle.io/v1 ETCDSnapshotFile etcdsnapshotfiles -
traefik.io/v1alpha1 IngressRoute ingressroutes ns
traefik.io/v1alpha1 IngressRouteTCP ingressroutetcps ns
traefik.io/v1alpha1 IngressRouteUDP ingressrouteudps ns
traefik.io/v1alpha1 Middleware middlewares ns
traefik.io/v1alpha1 MiddlewareTCP middlewaretcps ns
traefik.io/v1alpha1 ServersTransport serverstransports ns
traefik.io/v1alpha1 ServersTransportTCP serverstransporttcps ns
traefik.io/v1alpha1 TLSOption tlsoptions ns
traefik.io/v1alpha1 TLSStore tlsstores ns
traefik.io/v1alpha1 TraefikService traefikservices ns
"""

# CRDs the upstream charts bring (by chart name), installed with their release. Charts
# that template their CRDs (cert-manager's installCRDs) cannot be read from the archive,
# hence this map; a chart's own crds/ folder is read from the archive as well.
CHART_CRDS = {
    "cert-manager": """
cert-manager.io/v1 Certificate certificates ns cert,certs
cert-manager.io/v1 CertificateRequest certificaterequests ns cr,crs
cert-manager.io/v1 Issuer issuers ns
cert-manager.io/v1 ClusterIssuer clusterissuers -
acme.cert-manager.io/v1 Order orders ns
acme.cert-manager.io/v1 Challenge challenges ns
""",
    "strimzi-kafka-operator": """
kafka.strimzi.io/v1beta2 Kafka kafkas ns k
kafka.strimzi.io/v1beta2 KafkaTopic kafkatopics ns kt
kafka.strimzi.io/v1beta2 KafkaUser kafkausers ns ku
kafka.strimzi.io/v1beta2 KafkaNodePool kafkanodepools ns knp
kafka.strimzi.io/v1beta2 KafkaConnect kafkaconnects ns kc
kafka.strimzi.io/v1beta2 KafkaConnector kafkaconnectors ns kctr
kafka.strimzi.io/v1beta2 KafkaMirrorMaker2 kafkamirrormaker2s ns kmm2
kafka.strimzi.io/v1beta2 KafkaBridge kafkabridges ns kb
kafka.strimzi.io/v1beta2 KafkaRebalance kafkarebalances ns kr
core.strimzi.io/v1beta2 StrimziPodSet strimzipodsets ns sps
""",
    "flux2": """
source.toolkit.fluxcd.io/v1 GitRepository gitrepositories ns gitrepo
source.toolkit.fluxcd.io/v1 HelmRepository helmrepositories ns helmrepo
source.toolkit.fluxcd.io/v1 HelmChart helmcharts ns hc
source.toolkit.fluxcd.io/v1 Bucket buckets ns
source.toolkit.fluxcd.io/v1beta2 OCIRepository ocirepositories ns ocirepo
kustomize.toolkit.fluxcd.io/v1 Kustomization kustomizations ns ks
helm.toolkit.fluxcd.io/v2 HelmRelease helmreleases ns hr
notification.toolkit.fluxcd.io/v1beta3 Alert alerts ns
notification.toolkit.fluxcd.io/v1beta3 Provider providers ns
notification.toolkit.fluxcd.io/v1 Receiver receivers ns
image.toolkit.fluxcd.io/v1beta2 ImageRepository imagerepositories ns
image.toolkit.fluxcd.io/v1beta2 ImagePolicy imagepolicies ns
image.toolkit.fluxcd.io/v1beta2 ImageUpdateAutomation imageupdateautomations ns
""",
    "kube-prometheus-stack": """
monitoring.coreos.com/v1 ServiceMonitor servicemonitors ns smon
monitoring.coreos.com/v1 PodMonitor podmonitors ns pmon
monitoring.coreos.com/v1 PrometheusRule prometheusrules ns promrule
monitoring.coreos.com/v1 Prometheus prometheuses ns prom
monitoring.coreos.com/v1 Alertmanager alertmanagers ns am
monitoring.coreos.com/v1 Probe probes ns prb
monitoring.coreos.com/v1 ThanosRuler thanosrulers ns ruler
monitoring.coreos.com/v1alpha1 AlertmanagerConfig alertmanagerconfigs ns amcfg
monitoring.coreos.com/v1alpha1 ScrapeConfig scrapeconfigs ns scfg
monitoring.coreos.com/v1alpha1 PrometheusAgent prometheusagents ns promagent
""",
}

DEFAULT_CONFIG: dict[str, Any] = {
    # `helm version --short`; its major version decides --atomic or --rollback-on-failure
    "helm_version": "v4.1.4+gstandin",
    # `kubectl version -o json`: the client (the real kubectl 1.33.9's own answer, with
    # the commit and date marked as a stand-in's) and the server (what K3s serves)
    "kubectl_version": "v1.33.9",
    "server_version": "v1.33.3+k3s1",
    # chart name -> CRD lines as in CHART_CRDS (a test may add or replace entries)
    "chart_crds": {name: [line for line in text.splitlines() if line.strip()]
                   for name, text in CHART_CRDS.items()},
    # chart name -> objects the release creates (namespace defaulted to the release's)
    "chart_objects": {},
    # what a Service answers through the API server's proxy (``kubectl get --raw
    # /api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``): {"NS/NAME:PORT": {PATH: body}}
    "service_proxy": {},
    # what a node's kubelet answers through the API server's node proxy (``kubectl get
    # --raw /api/v1/nodes/NODE/proxy/PATH``): {"NODE": {PATH: body}}
    "node_proxy": {},
}


# Kinds ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """One resource type the API serves."""

    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    namespaced: bool
    short: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def folder(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def resource(self) -> str:
        """``deployments.apps``: how API errors name the type."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def printed(self) -> str:
        """``deployment.apps``: how kubectl prints an object it acted on."""
        return f"{self.singular}.{self.group}" if self.group else self.singular

    def api_version(self, version: str | None = None) -> str:
        v = version or self.versions[0]
        return f"{self.group}/{v}" if self.group else v

    def crd(self) -> dict[str, Any]:
        """The CustomResourceDefinition object that serves this kind."""
        scope = "Namespaced" if self.namespaced else "Cluster"
        names = {"kind": self.kind, "listKind": f"{self.kind}List", "plural": self.plural,
                 "singular": self.singular}
        if self.short:
            names["shortNames"] = list(self.short)
        return {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{self.plural}.{self.group}"},
            "spec": {"group": self.group, "names": names, "scope": scope,
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}}}
                                  for i, v in enumerate(self.versions)]},
        }


def parse_kinds(text: str | list[str]) -> list[Kind]:
    lines = text.splitlines() if isinstance(text, str) else text
    out = []
    for line in lines:
        if not line.strip():
            continue
        api, kind, plural, scope, *short = line.split()
        group, _, versions = api.rpartition("/")
        out.append(Kind(group, tuple(versions.split(",")), kind, plural, scope == "ns",
                        tuple(short[0].split(",")) if short else ()))
    return out


def kind_of_crd(obj: dict[str, Any]) -> Kind | None:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    versions = tuple(v["name"] for v in spec.get("versions") or []
                     if isinstance(v, dict) and v.get("served", True) and v.get("name"))
    if not (spec.get("group") and names.get("kind") and names.get("plural") and versions):
        return None
    return Kind(spec["group"], versions, names["kind"], names["plural"],
                spec.get("scope", "Namespaced") == "Namespaced",
                tuple(names.get("shortNames") or ()))


# Fields and server-side apply --------------------------------------------------------

Path_ = tuple[str, ...]
_MISSING = object()
_SERVER_META = ("name", "namespace", "managedFields", "resourceVersion", "uid",
                "creationTimestamp", "generation")


def leaf_fields(config: dict[str, Any]) -> dict[Path_, Any]:
    """The fields a manifest sets: leaf paths (maps recursed, lists atomic) -> value."""
    out: dict[Path_, Any] = {}

    def walk(value: Any, path: Path_) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(item, (*path, str(key)))
        else:
            out[path] = value

    for key, value in config.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            for mkey, mvalue in (value or {}).items():
                if mkey not in _SERVER_META:
                    walk(mvalue, ("metadata", mkey))
        else:
            walk(value, (key,))
    return out


def get_path(obj: Any, path: Path_) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def set_path(obj: dict[str, Any], path: Path_, value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            obj[key] = {}
        obj = obj[key]
    obj[path[-1]] = copy.deepcopy(value)


def del_path(obj: dict[str, Any], path: Path_) -> None:
    trail = []
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            return
        trail.append((obj, key))
        obj = obj[key]
    obj.pop(path[-1], None)
    for parent, key in reversed(trail):  # drop maps the removal emptied
        if parent[key] == {}:
            del parent[key]


def fields_v1(paths: list[Path_] | set[Path_]) -> dict[str, Any]:
    """Paths in the API server's FieldsV1 notation (``{"f:data": {"f:a": {}}}``)."""
    out: dict[str, Any] = {}
    for path in sorted(paths):
        node = out
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return out


def paths_of(fields: dict[str, Any], prefix: Path_ = ()) -> list[Path_]:
    out: list[Path_] = []
    for key, sub in fields.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        out += paths_of(sub, path) if sub else [path]
    return out


def field_text(path: Path_) -> str:
    return "." + ".".join(path)


@dataclass(frozen=True)
class Conflict:
    manager: str
    api_version: str
    path: Path_


def conflict_message(conflicts: list[Conflict]) -> str:
    """The API server's message for a server-side apply conflict (status 409)."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return (f'Apply failed with 1 conflict: conflict with "{c.manager}" using'
                f" {c.api_version}: {field_text(c.path)}")
    by_manager: dict[tuple[str, str], list[Path_]] = {}
    for c in conflicts:
        by_manager.setdefault((c.manager, c.api_version), []).append(c.path)
    groups = [f'conflicts with "{manager}" using {version}:\n'
              + "\n".join(f"- {field_text(p)}" for p in paths)
              for (manager, version), paths in by_manager.items()]
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(groups)


def normalize(config: dict[str, Any], kind: Kind, namespace: str | None) -> dict[str, Any]:
    """A manifest as the API server stores it: namespace set (or dropped), status ignored,
    a Secret's stringData folded into data (base64)."""
    obj = copy.deepcopy(config)
    obj.pop("status", None)
    meta = obj.setdefault("metadata", {})
    if kind.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if kind.kind == "Secret" and not kind.group and isinstance(obj.get("stringData"), dict):
        data = obj.setdefault("data", {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    return obj


def managed(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((obj or {}).get("metadata") or {}).get("managedFields") or [])


def server_side_apply(live: dict[str, Any] | None, config: dict[str, Any], manager: str,
                      *, force: bool = False) -> tuple[dict[str, Any], list[Conflict]]:
    """``config`` applied over ``live`` by ``manager``: (merged object, conflicts).

    Conflicts (another manager owns a field ``config`` sets to another value) leave the
    merge undone unless ``force``. Fields ``manager`` applied before and no longer sets
    are removed unless another manager owns them too."""
    ours = leaf_fields(config)
    entries = managed(live)
    conflicts = []
    for entry in entries:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            continue
        for path in paths_of(entry.get("fieldsV1") or {}):
            if path in ours and get_path(live, path) != ours[path]:
                conflicts.append(Conflict(entry.get("manager", "?"),
                                          entry.get("apiVersion", "v1"), path))
    if conflicts and not force:
        return copy.deepcopy(live) if live else {}, conflicts
    merged = copy.deepcopy(live) if live else {}
    previous: set[Path_] = set()
    others: set[Path_] = set()
    for entry in entries:
        owned = set(paths_of(entry.get("fieldsV1") or {}))
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            previous = owned
        else:
            others |= owned
    for path in previous - set(ours) - others:
        del_path(merged, path)
    for path, value in ours.items():
        set_path(merged, path, value)
    merged["apiVersion"], merged["kind"] = config["apiVersion"], config["kind"]
    meta = merged.setdefault("metadata", {})
    meta["name"] = config["metadata"]["name"]
    if "namespace" in config["metadata"]:
        meta["namespace"] = config["metadata"]["namespace"]
    kept = []
    for entry in entries:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            continue
        if force:  # forcing takes the conflicting fields away from their managers
            lost = {c.path for c in conflicts if c.manager == entry.get("manager")}
            owned = [p for p in paths_of(entry.get("fieldsV1") or {}) if p not in lost]
            if not owned:
                continue
            entry = {**entry, "fieldsV1": fields_v1(owned)}
        kept.append(entry)
    kept.append({"apiVersion": config["apiVersion"], "fieldsType": "FieldsV1",
                 "fieldsV1": fields_v1(set(ours)), "manager": manager,
                 "operation": "Apply"})
    meta["managedFields"] = kept
    return merged, conflicts


def update_fields(live: dict[str, Any], changes: dict[Path_, Any], manager: str) -> dict[str, Any]:
    """An Update (``kubectl edit``, ``annotate``): ``changes`` written, their fields taken
    over by ``manager`` (removed from every other manager, as the API server does)."""
    obj = copy.deepcopy(live)
    for path, value in changes.items():
        if value is _MISSING or value is None:
            del_path(obj, path)
        else:
            set_path(obj, path, value)
    entries = []
    for entry in managed(obj):
        owned = [p for p in paths_of(entry.get("fieldsV1") or {}) if p not in changes]
        if entry.get("manager") == manager and entry.get("operation") == "Update":
            continue
        if owned:
            entries.append({**entry, "fieldsV1": fields_v1(owned)})
    mine = {p for p in changes if changes[p] is not None}
    for entry in managed(live):
        if entry.get("manager") == manager and entry.get("operation") == "Update":
            mine |= set(paths_of(entry.get("fieldsV1") or {}))
    if mine:
        entries.append({"apiVersion": live.get("apiVersion", "v1"), "fieldsType": "FieldsV1",
                        "fieldsV1": fields_v1(mine), "manager": manager,
                        "operation": "Update"})
    obj.setdefault("metadata", {})["managedFields"] = entries
    return obj


def without_managed_fields(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


def same_content(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return without_managed_fields(a) == without_managed_fields(b)


# The state folder -----------------------------------------------------------------------

def key_of(kind: Kind, namespace: str | None, name: str) -> str:
    """How kdiff and the injections name an object: ``Kind/namespace/name`` (``-``)."""
    return f"{kind.kind}/{namespace if kind.namespaced else '-'}/{name}"


class State:
    """The stand-in cluster's state folder (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._kinds: list[Kind] | None = None  # until a CRD is written

    @classmethod
    def from_env(cls) -> State:
        root = os.environ.get(STATE_ENV)
        if not root or not Path(root).is_dir():
            raise SystemExit(f"stand-in: ${STATE_ENV} must name the stand-in's state folder")
        return cls(Path(root))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with (self.root / "lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # files ------------------------------------------------------------------------------
    def _read(self, name: str, default: Any) -> Any:
        path = self.root / name
        return json.loads(path.read_text()) if path.is_file() else copy.deepcopy(default)

    def _write(self, path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)

    def config(self) -> dict[str, Any]:
        return {**copy.deepcopy(DEFAULT_CONFIG), **self._read("config.json", {})}

    def set_config(self, **values: Any) -> None:
        self._write(self.root / "config.json", {**self._read("config.json", {}), **values})

    def injections(self) -> dict[str, Any]:
        """``unreachable`` / ``unauthorized`` (bool: both binaries fail as the real ones do),
        ``not_ready`` ({"Kind/ns/name": message}: that object's Ready/Available condition
        stays False; a PersistentVolumeClaim stays Pending; a Service has no ready
        endpoint, so its proxy answers 503), ``helm_fail`` ({"ns/name": {"message": str,
        "times": int | None}}: that release's install/upgrade fails, ``times`` times or
        always)."""
        return dict(self._read("inject.json", {}))

    def set_injections(self, data: dict[str, Any]) -> None:
        self._write(self.root / "inject.json", data)

    def tick(self) -> int:
        """Advance the clock: one tick per write."""
        clock = int(self._read("clock.json", {"clock": 0})["clock"]) + 1
        self._write(self.root / "clock.json", {"clock": clock})
        return clock

    def clock(self) -> int:
        return int(self._read("clock.json", {"clock": 0})["clock"])

    @staticmethod
    def time_at(tick: int) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=tick)

    def log_call(self, record: dict[str, Any]) -> None:
        with (self.root / "calls.jsonl").open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    # kinds ------------------------------------------------------------------------------
    def kinds(self) -> list[Kind]:
        """What the API serves now: the built-in kinds, then every installed CRD's."""
        if self._kinds is not None:
            return list(self._kinds)
        out = parse_kinds(BUILTIN_KINDS)
        crd_kind = out[[k.kind for k in out].index("CustomResourceDefinition")]
        for obj in self.list(crd_kind):
            kind = kind_of_crd(obj)
            if kind is not None:
                out.append(kind)
        self._kinds = out
        return list(out)

    def mapping(self, api_version: str, kind_name: str) -> Kind | None:
        group, _, version = api_version.rpartition("/")
        for kind in self.kinds():
            if kind.group == group and kind.kind == kind_name and version in kind.versions:
                return kind
        return None

    def resource_type(self, name: str) -> Kind | None:
        """``kubectl`` TYPE words: kind, plural, short name, each with ``.group`` or not."""
        word = name.lower()
        for kind in self.kinds():
            for base in (kind.singular, kind.plural, *kind.short):
                if word == base or (kind.group and word == f"{base}.{kind.group}"):
                    return kind
        return None

    # objects ----------------------------------------------------------------------------
    def _object_path(self, kind: Kind, namespace: str | None, name: str) -> Path:
        return self.root / "objects" / kind.folder / (namespace if kind.namespaced else "-") \
            / f"{name}.json"

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        path = self._object_path(kind, namespace, name)
        return json.loads(path.read_text()) if path.is_file() else None

    def list(self, kind: Kind, namespace: str | None = None) -> list[dict[str, Any]]:
        folder = self.root / "objects" / kind.folder
        if not folder.is_dir():
            return []
        files = sorted(folder.glob("*/*.json"))
        out = [json.loads(p.read_text()) for p in files]
        if kind.namespaced and namespace is not None:
            out = [o for o in out if o["metadata"].get("namespace") == namespace]
        return sorted(out, key=lambda o: (o["metadata"].get("namespace", ""),
                                          o["metadata"]["name"]))

    def namespace_exists(self, name: str) -> bool:
        ns = self.mapping("v1", "Namespace")
        assert ns is not None
        return self.get(ns, None, name) is not None

    def put(self, kind: Kind, obj: dict[str, Any], previous: dict[str, Any] | None
            ) -> dict[str, Any]:
        """Store ``obj`` as the API server would: server fields set, resourceVersion (and,
        for a change outside metadata, generation) bumped; unchanged objects stay as they
        are (a no-op apply changes nothing)."""
        def untimed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: v for k, v in e.items() if k != "time"} for e in entries]

        if previous is not None and same_content(previous, obj) and \
                untimed(managed(previous)) == untimed(managed(obj)):
            return previous
        out = copy.deepcopy(obj)
        meta = out.setdefault("metadata", {})
        tick = self.tick()
        stamp = self.time_at(tick).strftime("%Y-%m-%dT%H:%M:%SZ")
        old = managed(previous)
        old_times = {json.dumps(u, sort_keys=True): e.get("time")
                     for u, e in zip(untimed(old), old, strict=True)}
        for entry in meta.get("managedFields") or []:
            same = json.dumps({k: v for k, v in entry.items() if k != "time"}, sort_keys=True)
            entry["time"] = old_times.get(same) or stamp
        if previous is None:
            meta["uid"] = f"5714d1e5-0000-4000-8000-{tick:012d}"
            meta["creationTimestamp"] = stamp
            meta["generation"] = 1
            if kind.kind == "Namespace" and not kind.group:
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
                out.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        else:
            for field in ("uid", "creationTimestamp"):
                meta[field] = previous["metadata"][field]
            spec_changed = {k: v for k, v in out.items() if k not in ("metadata", "status")} \
                != {k: v for k, v in previous.items() if k not in ("metadata", "status")}
            meta["generation"] = int(previous["metadata"].get("generation", 1)) + spec_changed
        meta["resourceVersion"] = str(tick)
        path = self._object_path(kind, meta.get("namespace"), meta["name"])
        self._write(path, out)
        if kind.kind == "CustomResourceDefinition":
            self._kinds = None
        if kind.kind == "Ingress" and kind.group == "networking.k8s.io":
            ingress_shim(self, out)
        return out

    def record(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` exactly as given, status included: what the kubelet, the scheduler
        and the controllers write (a Pod's status, an Event), which no apply can."""
        meta = obj.get("metadata") or {}
        path = self._object_path(kind, meta.get("namespace"), meta["name"])
        self._write(path, obj)
        self.tick()
        return obj

    def _log_path(self, namespace: str, pod: str, container: str, previous: bool) -> Path:
        return self.root / "logs" / namespace / pod / (
            f"{container}.{'previous' if previous else 'current'}.log")

    def set_log(self, namespace: str, pod: str, container: str, text: str,
                previous: bool = True) -> None:
        path = self._log_path(namespace, pod, container, previous)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def log(self, namespace: str, pod: str, container: str, previous: bool = True
            ) -> str | None:
        """A container's log as the kubelet keeps it (None: no such instance)."""
        path = self._log_path(namespace, pod, container, previous)
        return path.read_text() if path.is_file() else None

    def delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        self._object_path(kind, namespace, name).unlink(missing_ok=True)
        self._kinds = None

    def observe(self, kind: Kind, obj: dict[str, Any] | None) -> dict[str, Any] | None:
        """``obj`` as a reader sees it, its controllers settled: status computed now."""
        if obj is None:
            return None
        out = copy.deepcopy(obj)
        meta = out.get("metadata") or {}
        failing = self.injections().get("not_ready", {}).get(
            key_of(kind, meta.get("namespace"), meta.get("name", "")))
        out["status"] = status_of(kind, out, failing)
        if not out["status"]:
            out.pop("status")
        return out

    # Helm releases ----------------------------------------------------------------------
    def release(self, namespace: str, name: str) -> dict[str, Any] | None:
        path = self.root / "releases" / namespace / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def releases(self) -> list[dict[str, Any]]:
        folder = self.root / "releases"
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*/*.json"))] \
            if folder.is_dir() else []

    def put_release(self, release: dict[str, Any]) -> None:
        self._write(self.root / "releases" / release["namespace"] / f"{release['name']}.json",
                    release)

    def delete_release(self, namespace: str, name: str) -> None:
        (self.root / "releases" / namespace / f"{name}.json").unlink(missing_ok=True)


# Status as the controllers would set it ------------------------------------------------

_BUILTIN_GROUPS = {k.group for k in parse_kinds(BUILTIN_KINDS)}
STRIMZI_GROUP = "kafka.strimzi.io"
#: Strimzi kinds whose operator says a failure as ``NotReady: "True"`` (StatusUtils and
#: KafkaAssemblyOperator of Strimzi 0.47); its Topic Operator writes ``Ready: "False"``.
STRIMZI_NOT_READY_KINDS = ("Kafka", "KafkaUser", "KafkaConnect", "KafkaBridge",
                           "KafkaMirrorMaker2", "KafkaConnector")


def condition(kind_: str, ok: bool, message: str, tick_stamp: str) -> dict[str, Any]:
    return {"type": kind_, "status": "True" if ok else "False",
            "reason": "StandinReady" if ok else "StandinInjectedFailure",
            "message": message, "lastTransitionTime": tick_stamp}


def status_of(kind: Kind, obj: dict[str, Any], failing: str | None) -> dict[str, Any]:
    """What the owning controller reports for ``obj`` (``failing``: an injected message)."""
    ok = failing is None
    stamp = (obj.get("metadata") or {}).get("creationTimestamp", "")
    generation = (obj.get("metadata") or {}).get("generation", 1)
    if kind.group == "apiextensions.k8s.io":
        return {"acceptedNames": (obj.get("spec") or {}).get("names", {}),
                "conditions": [condition("NamesAccepted", True, "no conflicts found", stamp),
                               condition("Established", True,
                                         "the initial names have been accepted", stamp)],
                "storedVersions": [v["name"] for v in (obj.get("spec") or {}).get("versions", [])
                                   if v.get("storage")]}
    if kind.group == "" and kind.kind == "Namespace":
        return {"phase": "Active"}
    if kind.group == "" and kind.kind == "PersistentVolumeClaim":
        # local-path binds it at once (its pod is there: waits never wait); a failure a
        # test injects keeps it Pending, as a claim whose provisioning fails stays. The
        # shape of the API's PVC status (accessModes and capacity only once Bound).
        if not ok:
            return {"phase": "Pending"}
        if (obj.get("status") or {}).get("phase"):  # a recorded claim keeps its own status
            return dict(obj["status"])
        spec = obj.get("spec") or {}
        return {"accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                "capacity": {"storage": ((spec.get("resources") or {}).get("requests")
                                         or {}).get("storage", "1Gi")},
                "phase": "Bound"}
    if kind.group == "apps" and kind.kind in ("Deployment", "StatefulSet", "DaemonSet"):
        replicas = int((obj.get("spec") or {}).get("replicas", 1))
        ready = replicas if ok else 0
        status: dict[str, Any] = {"observedGeneration": generation, "replicas": replicas,
                                  "updatedReplicas": replicas, "readyReplicas": ready,
                                  "availableReplicas": ready}
        if kind.kind == "Deployment":
            status["conditions"] = [
                condition("Available", ok, "Deployment has minimum availability." if ok
                          else failing or "", stamp),
                condition("Progressing", True, "ReplicaSet has successfully progressed.",
                          stamp)]
        return status
    if kind.group == STRIMZI_GROUP:
        return strimzi_status(kind, obj, failing, stamp, generation)
    if kind.group not in _BUILTIN_GROUPS:  # a custom resource: its operator says Ready
        return {"conditions": [condition("Ready", ok, "" if ok else failing or "", stamp)],
                "observedGeneration": generation}
    return dict(obj.get("status") or {})


CLUSTER_ISSUER = "cert-manager.io/cluster-issuer"


def ingress_shim(state: State, ingress: dict[str, Any]) -> None:
    """cert-manager's ingress-shim, settled at once: for an Ingress annotated
    ``cert-manager.io/cluster-issuer``, a Certificate per ``tls[]`` entry named after its
    ``secretName``, in the Ingress's namespace, for its hosts (cert-manager.io/docs/usage/
    ingress, "How it works"), owned by the Ingress. Only once cert-manager's CRDs are
    installed (its release), as with the real controller."""
    kind = state.mapping("cert-manager.io/v1", "Certificate")
    meta = ingress.get("metadata") or {}
    issuer = (meta.get("annotations") or {}).get(CLUSTER_ISSUER)
    if kind is None or not issuer:
        return
    for tls in (ingress.get("spec") or {}).get("tls") or []:
        if not tls.get("secretName"):
            continue
        cert = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                "metadata": {"name": tls["secretName"], "namespace": meta["namespace"],
                             "ownerReferences": [{
                                 "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                 "name": meta["name"], "uid": meta.get("uid", ""),
                                 "controller": True, "blockOwnerDeletion": True}]},
                "spec": {"dnsNames": list(tls.get("hosts") or []),
                         "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer",
                                       "name": issuer},
                         "secretName": tls["secretName"],
                         "usages": ["digital signature", "key encipherment"]}}
        live = state.get(kind, meta["namespace"], tls["secretName"])
        merged, _ = server_side_apply(live, normalize(cert, kind, meta["namespace"]),
                                      "cert-manager-ingress-shim", force=True)
        state.put(kind, merged, live)
def strimzi_status(kind: Kind, obj: dict[str, Any], failing: str | None, stamp: str,
                   generation: int) -> dict[str, Any]:
    """What Strimzi 0.47 writes: a KafkaNodePool has no Ready condition at all (its
    status is node IDs, roles and replicas: KafkaPool.generateNodePoolStatus); a failing
    Kafka or KafkaUser has ``NotReady`` True with the failure's class as its reason."""
    spec = obj.get("spec") or {}
    if kind.kind == "KafkaNodePool":
        replicas = int(spec.get("replicas", 0))
        return {"observedGeneration": generation, "nodeIds": list(range(replicas)),
                "roles": sorted(spec.get("roles") or []), "replicas": replicas,
                "clusterId": "c3RhbmQtaW4tY2x1c3Rlcg"}
    if failing is not None and kind.kind in STRIMZI_NOT_READY_KINDS:
        return {"conditions": [{"type": "NotReady", "status": "True",
                                "reason": "StandinInjectedFailure", "message": failing,
                                "lastTransitionTime": stamp}],
                "observedGeneration": generation}
    status = {"conditions": [condition("Ready", failing is None, failing or "", stamp)],
              "observedGeneration": generation}
    if kind.kind == "Kafka" and failing is None and (spec.get("kafka") or {}).get("version"):
        # the version the brokers run once reconciled (Strimzi's KafkaStatus.kafkaVersion)
        status["kafkaVersion"] = str(spec["kafka"]["version"])
    return status


def seed_k3s(state: State) -> None:
    """A fresh K3s server: its namespaces and its own CRDs, created by K3s itself."""
    ns = state.mapping("v1", "Namespace")
    crd = state.mapping("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert ns is not None and crd is not None
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        state.put(ns, update_fields(obj, {}, "k3s"), None)
    for kind in parse_kinds(K3S_CRDS):
        obj = kind.crd()
        merged, _ = server_side_apply(None, obj, "k3s")
        state.put(crd, merged, None)


# Running a stand-in -------------------------------------------------------------------

class Unsupported(Exception):
    """A command line the stand-in does not understand: exit 2, never pretend."""


@dataclass
class Streams:
    """What one invocation printed, and its stdin (read once, only when asked for)."""

    out: io.StringIO
    err: io.StringIO
    _stdin: bytes | None = None

    def stdin(self) -> bytes:
        if self._stdin is None:
            self._stdin = sys.stdin.buffer.read()
        return self._stdin

    def read_stdin(self) -> bytes:
        return self._stdin or b""


Handler = Callable[[State, list[str], Streams], int]


def run_standin(binary: str, argv: list[str], handler: Handler) -> int:
    """Run ``handler`` on ``argv`` under the state lock; log the call; print its output."""
    state = State.from_env()
    streams = Streams(io.StringIO(), io.StringIO())
    with state.locked():
        try:
            rc = handler(state, argv[1:], streams)
        except Unsupported:
            streams.err.write(f"stand-in: unsupported: {binary} {shlex.join(argv[1:])}\n")
            rc = 2
        except Exception:  # a bug of the stand-in: loud, with its traceback
            streams.err.write(f"stand-in {binary}: internal error:\n{traceback.format_exc()}")
            rc = 70
        state.log_call({
            "binary": binary, "argv": argv, "env": dict(os.environ),
            "stdin": base64.b64encode(streams.read_stdin()).decode(),
            "stdout": streams.out.getvalue(), "stderr": streams.err.getvalue(),
            "rc": rc, "clock": state.clock(),
        })
    sys.stdout.write(streams.out.getvalue())
    sys.stderr.write(streams.err.getvalue())
    sys.stdout.flush()
    return rc


def parse_flags(args: list[str], spec: dict[str, str], *, optional_values: tuple[str, ...] = ()
                ) -> tuple[dict[str, str], list[str]]:
    """pflag-style flags: ``spec`` maps each spelling (``-n``, ``--namespace``) to a name,
    a name ending in ``?`` being a boolean. ``optional_values``: flags whose value may only
    follow ``=`` (helm 4's ``--wait[=watcher]``). Unknown flags raise Unsupported."""
    flags: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        word, eq, value = arg.partition("=")
        name = spec.get(word)
        if name is None:
            raise Unsupported(arg)
        if name.endswith("?"):
            if eq and value not in ("true", "false"):
                raise Unsupported(arg)
            flags[name[:-1]] = value if eq else "true"
        elif eq:
            flags[name] = value
        elif word in optional_values:
            flags[name] = ""
        elif i < len(args):
            flags[name] = args[i]
            i += 1
        else:
            raise Unsupported(arg)
    return flags, positional


def go_json(data: Any, indent: int | None = None) -> str:
    """JSON as Go's encoding/json writes it (HTML characters escaped, compact or indented)."""
    text = json.dumps(data, indent=indent, separators=(",", ":") if indent is None else None,
                      ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def seconds(duration: str) -> float:
    """A Go duration (``600s``, ``5m``, ``1h2m3s``) in seconds; Unsupported otherwise."""
    m = _DURATION.match(duration)
    if not duration or not m or not any(m.groups()):
        raise Unsupported(duration)
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


# Reaching the API: the kubeconfig, and the failures tests inject ------------------------

@dataclass(frozen=True)
class Api:
    url: str  # "https://127.0.0.1:6443"
    hostport: str  # "127.0.0.1:6443"
    failure: str | None  # None, "unreachable" or "unauthorized"

    def cause(self, path: str) -> str:
        """client-go's text for a request to ``path`` that failed."""
        if self.failure == "unauthorized":
            return "the server has asked for the client to provide credentials"
        host, _, port = self.hostport.rpartition(":")
        dial = f"127.0.0.1:{port}" if host == "localhost" else self.hostport
        return f'Get "{self.url}{path}": dial tcp {dial}: connect: connection refused'


def api(state: State) -> Api:
    """Where the kubeconfig in $KUBECONFIG points, and whether it can be reached.

    No $KUBECONFIG, or no such file: the real tools fall back to localhost:8080, which
    refuses (so a command that forgot KUBECONFIG fails here as it would for real)."""
    injected = state.injections()
    path = os.environ.get("KUBECONFIG", "")
    url = "http://localhost:8080"
    missing = not path or not os.path.isfile(path)
    if not missing:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
            current = data.get("current-context")
            context = next(c["context"] for c in data.get("contexts", [])
                           if c.get("name") == current)
            url = next(c["cluster"]["server"] for c in data.get("clusters", [])
                       if c.get("name") == context["cluster"])
        except (yaml.YAMLError, StopIteration, KeyError, TypeError, AttributeError):
            url = "https://127.0.0.1:6443"
    parsed = urllib.parse.urlsplit(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    hostport = f"{parsed.hostname}:{port}"
    failure = None
    if missing or injected.get("unreachable"):
        failure = "unreachable"
    elif injected.get("unauthorized"):
        failure = "unauthorized"
    return Api(url.rstrip("/"), hostport, failure)


def klog_line(level: str, where: str, message: str) -> str:
    """A klog line as kubectl prints it on stderr: ``E0105 09:00:07.123456    1234 x.go:1] ...``."""
    now = dt.datetime.now()
    return f"{level}{now:%m%d %H:%M:%S}.{now.microsecond:06d} {os.getpid():>7} {where}] {message}"


def klog_error(message: str) -> str:
    return klog_line("E", "memcache.go:265", f'"Unhandled Error" err="{message}"')
