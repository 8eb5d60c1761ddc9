"""The stand-in ``kubectl`` and ``helm`` (tests/standins/), ready for a test.

The fixture ``standins`` (registered for every test by tests/conftest.py)::

    from tests.standins.harness import Standins

    def test_something(standins: Standins) -> None:
        tools = standins.tools()            # Tools.find(): the stand-ins (STACK_KUBECTL/HELM)
        target = standins.target(tools)     # a LocalTarget with Tools.env(kubeconfig)
        converge(target, steps, ...)        # our real steps, facts and commands
        standins.calls("kubectl")           # every invocation: argv, env, stdin, output, rc
        standins.objects()                  # {"Kind/namespace/name": object as read}
        standins.releases()                 # {"namespace/name": HelmRelease}
        standins.inject(unreachable=True)   # failures, see Standins.inject
        standins.record(pod_with_status)    # as the kubelet writes it (status kept)
        standins.set_log("app", pod, "c", text)  # its previous instance's log

The fixture gives each test a fresh stand-in cluster (a fresh K3s: its namespaces and
CRDs) in its tmp_path, puts the stand-ins first through ``$STACK_KUBECTL`` and
``$STACK_HELM`` (which Tools.find and tasks.stack.helm honour) and has them run with the
Python running the tests (``$STACK_STANDIN_PYTHON``: the stand-ins need PyYAML).
"""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import sys
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.cluster.kube import Tools
from tasks.engine.converge import converge
from tasks.engine.report import Reporter, Status, Summary
from tasks.engine.step import Step
from tasks.engine.target import LocalTarget
from tests.standins.standin_common import (
    STATE_ENV,
    State,
    field_text,
    normalize,
    parse_kinds,
    paths_of,
    seed_k3s,
    server_side_apply,
    update_fields,
)

HERE = Path(__file__).resolve().parent
KUBECTL = HERE / "kubectl"
HELM = HERE / "helm"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: standin
  user: {token: standin-token-not-a-secret}
contexts:
- name: standin
  context: {cluster: standin, user: standin}
current-context: standin
"""
#: The arguments kubectl keeps from $KUBECTL_EXTERNAL_DIFF after the program (1.33 diff.go).
KEPT_DIFF_ARG = re.compile(r"^[a-zA-Z0-9-=]+$")


@dataclass(frozen=True)
class Call:
    """One invocation of a stand-in, as it logged it."""

    binary: str  # "kubectl" or "helm"
    argv: tuple[str, ...]  # argv[0] is the path our code ran
    env: dict[str, str]  # the whole environment it got
    stdin: bytes
    stdout: str
    stderr: str
    rc: int

    @property
    def args(self) -> tuple[str, ...]:
        return self.argv[1:]

    @property
    def line(self) -> str:
        """``kubectl diff --server-side ...``: the command without its path."""
        return shlex.join((self.binary, *self.args))


@dataclass(frozen=True)
class Revision:
    revision: int
    status: str  # "deployed", "failed", "superseded"
    chart: str
    version: str
    app_version: str
    values: dict[str, Any]
    description: str


@dataclass(frozen=True)
class HelmRelease:
    name: str
    namespace: str
    revisions: tuple[Revision, ...]

    @property
    def current(self) -> Revision:
        return self.revisions[-1]


class Standins:
    """One stand-in cluster: its state folder, the stand-ins' paths, typed accessors."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.kubeconfig = root / "kubeconfig"
        self.kubectl, self.helm = KUBECTL, HELM

    @property
    def state(self) -> State:
        """The state folder, read afresh (the stand-ins change it in their own processes)."""
        return State(self.root / "state")

    @classmethod
    def start(cls, root: Path, monkeypatch: pytest.MonkeyPatch) -> Standins:
        (root / "state").mkdir(parents=True)
        (root / "bin").mkdir()
        self = cls(root)
        self.kubeconfig.write_text(KUBECONFIG)
        self.kubeconfig.chmod(0o600)
        monkeypatch.setenv(STATE_ENV, str(self.state.root))
        monkeypatch.setenv("STACK_STANDIN_PYTHON", sys.executable)
        monkeypatch.setenv("STACK_KUBECTL", str(KUBECTL))
        monkeypatch.setenv("STACK_HELM", str(HELM))
        seed_k3s(self.state)
        return self

    # our code's side -------------------------------------------------------------------
    def tools(self) -> Tools:
        """``Tools.find()``, which finds the stand-ins (and asks helm its version)."""
        return Tools.find()

    def env(self, tools: Tools) -> dict[str, str]:
        """``tools.env(kubeconfig)``: the environment the cluster layers give kubectl/helm."""
        return tools.env(self.kubeconfig)

    def target(self, tools: Tools | None = None) -> LocalTarget:
        tools = tools or self.tools()
        return LocalTarget(name="cluster standin", env=self.env(tools))

    # what happened ---------------------------------------------------------------------
    def converge(self, tools: Tools, *layers: Sequence[Step]) -> Converged:
        """Our real converge over each layer's steps in turn (stopping at a layer that
        fails), against the stand-ins, with the reporter's output kept."""
        out = io.StringIO()
        summary = Summary()
        ok = all(converge(self.target(tools), steps, check=False, reporter=Reporter(out),
                          summary=summary) for steps in layers)
        return Converged(ok, summary, out.getvalue())

    def carried_on_stdin_only(self, secret: str, text: str) -> list[Call]:
        """Assert ``secret`` reached the stand-ins only ever on stdin: never in an argv,
        an environment, their output or ``text`` (what we printed). The calls that
        carried it are returned (at least one)."""
        assert secret not in text
        calls = self.calls()
        for call in calls:
            assert secret not in " ".join(call.argv)
            assert secret not in json.dumps(call.env)
            assert secret not in call.stdout and secret not in call.stderr
        carried = [c for c in calls if secret.encode() in c.stdin]
        assert carried, "the secret never reached the cluster"
        return carried

    def calls(self, binary: str | None = None) -> list[Call]:
        path = self.state.root / "calls.jsonl"
        out = []
        for line in path.read_text().splitlines() if path.is_file() else []:
            r = json.loads(line)
            if binary is None or r["binary"] == binary:
                out.append(Call(r["binary"], tuple(r["argv"]), r["env"],
                                base64.b64decode(r["stdin"]), r["stdout"], r["stderr"],
                                r["rc"]))
        return out

    def clear_calls(self) -> None:
        (self.state.root / "calls.jsonl").unlink(missing_ok=True)

    def objects(self, kind: str | None = None) -> dict[str, dict[str, Any]]:
        """Every object (or every one of ``kind``), as a reader sees it, by
        ``Kind/namespace/name`` (``-`` when cluster-scoped), as kdiff keys them."""
        out = {}
        state = self.state
        for k in state.kinds():
            if kind is not None and k.kind != kind:
                continue
            for obj in state.list(k):
                seen = state.observe(k, obj)
                assert seen is not None
                meta = seen["metadata"]
                out[f"{k.kind}/{meta.get('namespace', '-')}/{meta['name']}"] = seen
        return out

    def object(self, key: str) -> dict[str, Any] | None:
        return self.objects().get(key)

    def releases(self) -> dict[str, HelmRelease]:
        return {f"{r['namespace']}/{r['name']}": HelmRelease(r["name"], r["namespace"], tuple(
            Revision(v["revision"], v["status"], v["chart"], v["version"], v["app_version"],
                     v["values"], v["description"]) for v in r["revisions"]))
            for r in self.state.releases()}

    # changing the cluster behind our code's back ----------------------------------------
    def _locate(self, key: str) -> tuple[Any, str | None, str]:
        kind_name, namespace, name = key.split("/")
        kind = next(k for k in self.state.kinds() if k.kind == kind_name)
        return kind, (None if namespace == "-" else namespace), name

    def apply(self, manifest: dict[str, Any], manager: str) -> dict[str, Any]:
        """Server-side apply ``manifest`` as ``manager`` (forced, as controllers do)."""
        meta = manifest.get("metadata") or {}
        state = self.state
        kind = state.mapping(manifest["apiVersion"], manifest["kind"])
        assert kind is not None, f"no kind {manifest['kind']} served (CRD missing?)"
        namespace = meta.get("namespace") or ("default" if kind.namespaced else None)
        assert namespace is None or state.namespace_exists(namespace), \
            f"no namespace {namespace}: the API would refuse {manifest['kind']} {meta['name']}"
        live = state.get(kind, namespace, meta["name"])
        merged, _ = server_side_apply(live, normalize(manifest, kind, namespace), manager,
                                      force=True)
        with state.locked():
            return state.put(kind, merged, live)

    def record(self, obj: dict[str, Any]) -> None:
        """Store ``obj`` as the cluster's own components write it (a Pod with the status
        the kubelet reports, an Event): exactly as given, never through an apply."""
        state = self.state
        kind = state.mapping(obj["apiVersion"], obj["kind"])
        assert kind is not None, f"no kind {obj['kind']} served (CRD missing?)"
        namespace = (obj.get("metadata") or {}).get("namespace")
        assert not kind.namespaced or (namespace and state.namespace_exists(namespace)), \
            f"no namespace {namespace}: the API would refuse {obj['kind']}"
        with state.locked():
            state.record(kind, obj)

    def set_log(self, namespace: str, pod: str, container: str, text: str) -> None:
        """The log of a container's previous instance (``kubectl logs --previous``)."""
        with self.state.locked():
            self.state.set_log(namespace, pod, container, text)

    def edit(self, key: str, changes: dict[tuple[str, ...], Any],
             manager: str | None = "kubectl-edit") -> None:
        """Change fields of object ``key`` (``None`` deletes one). ``manager``: who did,
        with an Update, which takes those fields over (as ``kubectl edit`` does: our next
        apply of another value then conflicts); ``None``: nobody the API would record
        (the change alone, ownership untouched)."""
        kind, namespace, name = self._locate(key)
        state = self.state
        live = state.get(kind, namespace, name)
        assert live is not None, f"no object {key}"
        if manager is None:
            obj = json.loads(json.dumps(live))
            for path, value in changes.items():
                node = obj
                for part in path[:-1]:
                    node = node.setdefault(part, {})
                if value is None:
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = value
        else:
            obj = update_fields(live, changes, manager)
        with state.locked():
            state.put(kind, obj, live)

    def install_crds(self, chart: str) -> None:
        """The CRDs the config lists for ``chart``, as its Helm release would install them."""
        for kind in parse_kinds(self.state.config()["chart_crds"][chart]):
            self.apply(kind.crd(), "helm")

    def inject(self, *, unreachable: bool | None = None, unauthorized: bool | None = None,
               not_ready: dict[str, str] | None = None,
               helm_fail: dict[str, str | tuple[str, int]] | None = None) -> None:
        """Failures, added to those already injected:

        - ``unreachable``: every API call fails with the tools' connection-refused texts;
        - ``unauthorized``: every API call fails as with a 401 (credentials refused);
        - ``not_ready``: {"Kind/namespace/name": message}: that object's Ready (Deployments:
          Available) condition is False with that message; waits on it time out (a
          PersistentVolumeClaim stays Pending; a Service's proxy answers 503);
        - ``helm_fail``: {"namespace/release": message or (message, times)}: installing or
          upgrading that release fails (``times`` times, else always)."""
        data = self.state.injections()
        if unreachable is not None:
            data["unreachable"] = unreachable
        if unauthorized is not None:
            data["unauthorized"] = unauthorized
        if not_ready:
            data.setdefault("not_ready", {}).update(not_ready)
        for release, spec in (helm_fail or {}).items():
            message, times = (spec, None) if isinstance(spec, str) else spec
            data.setdefault("helm_fail", {})[release] = {"message": message, "times": times}
        self.state.set_injections(data)

    def clear_injections(self) -> None:
        self.state.set_injections({})

    def configure(self, **values: Any) -> None:
        """Settings of standin_common.DEFAULT_CONFIG: ``helm_version``, ``server_version``,
        ``chart_crds`` (replaced whole), ``chart_objects`` ({chart: [manifest, ...]}),
        ``service_proxy`` ({"ns/service:port": {path: body}}: ``kubectl get --raw``),
        ``node_proxy`` ({"node": {path: body}}: the kubelet through the node proxy)."""
        self.state.set_config(**values)


@dataclass
class Converged:
    """What :meth:`Standins.converge` gives back."""

    ok: bool
    summary: Summary
    text: str

    def outcomes(self) -> list[tuple[str, Status]]:
        return [(o.step_id, o.status) for o in self.summary.outcomes]


def chart_archive(folder: Path, name: str, version: str, *, app_version: str = "",
                  crds: Sequence[dict[str, Any]] = ()) -> Path:
    """A chart archive as ``helm package`` lays it out: ``<name>/Chart.yaml``,
    ``values.yaml``, ``templates/``, and ``crds/`` when given CRDs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}.tgz"
    meta = {"apiVersion": "v2", "name": name, "version": version, "type": "application"}
    if app_version:
        meta["appVersion"] = app_version
    files = {f"{name}/Chart.yaml": yaml.safe_dump(meta), f"{name}/values.yaml": "{}\n",
             f"{name}/templates/NOTES.txt": "stand-in chart\n"}
    if crds:
        files[f"{name}/crds/crds.yaml"] = yaml.safe_dump_all(list(crds))
    with tarfile.open(path, "w:gz") as tar:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def owned_fields(obj: dict[str, Any], manager: str) -> set[str]:
    """The fields ``manager`` owns in ``obj`` (``.data.a``), from its managedFields."""
    return {field_text(p) for e in (obj.get("metadata") or {}).get("managedFields") or []
            if e.get("manager") == manager for p in paths_of(e.get("fieldsV1") or {})}


__all__ = ["Call", "HelmRelease", "Revision", "Standins", "chart_archive", "owned_fields",
           "standins"]


@pytest.fixture
def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Standins]:
    yield Standins.start(tmp_path / "standins", monkeypatch)
