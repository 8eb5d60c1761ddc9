"""References of a pod that do not resolve: Secrets, ConfigMaps, their keys, image pull
Secrets, PersistentVolumeClaims.

What exists is read with one ``kubectl get secrets,configmaps,persistentvolumeclaims
-o go-template=`` (:data:`TEMPLATE`) that prints, per object, its kind, its name and
either its keys (Secrets, ConfigMaps) or its phase and storage class (PVCs): a Secret's
values never leave kubectl. Secret and ConfigMap keys are ``[-._a-zA-Z0-9]+`` and names
DNS subdomains, so tabs and spaces separate them safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.apps.diagnose.pods import JSON, items, obj, text

#: One line per object: ``Kind<TAB>name<TAB>`` then ``key key `` (Secret, ConfigMap:
#: data and binaryData keys) or ``phase<TAB>storageClassName`` (PVC). A missing map
#: ranges over nothing; ``with`` skips a missing storage class (text/template).
TEMPLATE = (
    '{{range .items}}{{.kind}}{{"\\t"}}{{.metadata.name}}{{"\\t"}}'
    '{{if eq .kind "PersistentVolumeClaim"}}{{.status.phase}}{{"\\t"}}'
    '{{with .spec.storageClassName}}{{.}}{{end}}'
    '{{else}}{{range $k, $v := .data}}{{$k}} {{end}}'
    '{{range $k, $v := .binaryData}}{{$k}} {{end}}{{end}}{{"\\n"}}{{end}}'
)
KINDS = "secrets,configmaps,persistentvolumeclaims"


@dataclass(frozen=True)
class Claim:
    phase: str  # "Bound", "Pending", "Lost"
    storage_class: str


@dataclass(frozen=True)
class Objects:
    """What exists in the namespace: key names only, never values."""

    secrets: dict[str, frozenset[str]] = field(default_factory=dict)
    configmaps: dict[str, frozenset[str]] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)


def parse(output: str) -> Objects:
    """The lines :data:`TEMPLATE` prints."""
    found = Objects()
    for line in output.splitlines():
        kind, _, rest = line.partition("\t")
        name, _, rest = rest.partition("\t")
        if not name:
            continue
        if kind == "Secret":
            found.secrets[name] = frozenset(rest.split())
        elif kind == "ConfigMap":
            found.configmaps[name] = frozenset(rest.split())
        elif kind == "PersistentVolumeClaim":
            phase, _, storage_class = rest.partition("\t")
            found.claims[name] = Claim(phase.strip(), storage_class.strip())
    return found


@dataclass(frozen=True)
class Problem:
    """A reference that does not resolve, and what needs it."""

    kind: str  # "Secret", "ConfigMap", "image pull Secret", "PersistentVolumeClaim"
    name: str
    key: str | None  # the missing key (else the object itself is missing or unbound)
    used_by: tuple[str, ...]  # "env REDIS_URL of container api-gateway", "volume data"
    state: str = ""  # a PVC's phase when it exists but is not Bound
    storage_class: str = ""

    @property
    def missing_object(self) -> bool:
        return self.key is None and not self.state

    def text(self) -> str:
        if self.key is not None:
            what = f"{self.kind} {self.name} has no key {self.key}"
        elif self.state:
            sc = f", storage class {self.storage_class}" if self.storage_class else \
                ", no storage class"
            what = f"{self.kind} {self.name} is {self.state} (not Bound{sc})"
        else:
            what = f"{self.kind} {self.name} does not exist"
        users = ", ".join(self.used_by[:3]) + (
            f" and {len(self.used_by) - 3} more" if len(self.used_by) > 3 else "")
        return f"{what} ({users})" if users else what


def _keys_of(ref: JSON) -> list[str]:
    return [text(i.get("key")) for i in items(ref.get("items")) if text(i.get("key"))]


def problems(spec: JSON, found: Objects) -> list[Problem]:
    """Every reference of a pod spec that does not resolve (optional ones skipped)."""
    raw: dict[tuple[str, str, str | None, str, str], list[str]] = {}

    def need(kind: str, name: str, keys: list[str | None], optional: object, user: str
             ) -> None:
        if not name or optional is True:
            return
        table = found.secrets if kind == "Secret" else found.configmaps
        if name not in table:
            raw.setdefault((kind, name, None, "", ""), []).append(user)
            return
        for key in keys:
            if key is not None and key not in table[name]:
                raw.setdefault((kind, name, key, "", ""), []).append(user)

    containers = [(c, "init container") for c in items(spec.get("initContainers"))] + \
        [(c, "container") for c in items(spec.get("containers"))]
    for c, label in containers:
        where = f"{label} {text(c.get('name'))}"
        for env in items(c.get("env")):
            source = obj(env.get("valueFrom"))
            for field_name, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                ref = obj(source.get(field_name))
                if ref:
                    need(kind, text(ref.get("name")), [text(ref.get("key"))],
                         ref.get("optional"), f"env {text(env.get('name'))} of {where}")
        for env_from in items(c.get("envFrom")):
            for field_name, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                ref = obj(env_from.get(field_name))
                if ref:
                    need(kind, text(ref.get("name")), [], ref.get("optional"),
                         f"envFrom of {where}")
    for volume in items(spec.get("volumes")):
        user = f"volume {text(volume.get('name'))}"
        secret, configmap = obj(volume.get("secret")), obj(volume.get("configMap"))
        if secret:
            need("Secret", text(secret.get("secretName")), list(_keys_of(secret)),
                 secret.get("optional"), user)
        if configmap:
            need("ConfigMap", text(configmap.get("name")), list(_keys_of(configmap)),
                 configmap.get("optional"), user)
        for source in items(obj(volume.get("projected")).get("sources")):
            for field_name, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                ref = obj(source.get(field_name))
                if ref:
                    need(kind, text(ref.get("name")), list(_keys_of(ref)), ref.get("optional"),
                         user)
        claim = text(obj(volume.get("persistentVolumeClaim")).get("claimName"))
        if claim:
            state = found.claims.get(claim)
            if state is None:
                raw.setdefault(("PersistentVolumeClaim", claim, None, "", ""), []).append(user)
            elif state.phase != "Bound":
                raw.setdefault(("PersistentVolumeClaim", claim, None, state.phase or "Pending",
                                state.storage_class), []).append(user)
    for ref in items(spec.get("imagePullSecrets")):
        name = text(ref.get("name"))
        if name and name not in found.secrets:
            raw.setdefault(("image pull Secret", name, None, "", ""), [])
    return [Problem(kind, name, key, tuple(users), state, sc)
            for (kind, name, key, state, sc), users in raw.items()]
