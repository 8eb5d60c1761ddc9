"""The real kubectl 1.33.9 running apps.diagnose's reads against a minimal local API, and
the stand-in kubectl running them on the same objects: both must print the same.

The local API serves discovery, lists (with ``labelSelector``, items without kind and
apiVersion, as the API server lists them), one pod, and a pod's log (a 400 with the
kubelet's text when there is no previous instance). That pins what the stand-in's
``get`` of several types, its go-template and its ``logs --previous`` are worth, and shows
that no Secret value ever leaves the real kubectl.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.apps.diagnose import reads
from tasks.cluster.kube import Tools
from tasks.engine.facts import Fact, Raw
from tasks.engine.target import LocalTarget, gather
from tasks.repo import REPO_ROOT
from tests.standins.harness import Standins
from tests.unit.diagnose_cases import PREVIOUS_NOT_FOUND, load, log_outputs
from tests.unit.local_http import serve_handler, write_kubeconfig

KUBECTL = REPO_ROOT / ".cache" / "bin" / "kubectl-v33"
RESOURCES = [("pods", "Pod", "pod"), ("events", "Event", "event"), ("secrets", "Secret", "secret"),
             ("configmaps", "ConfigMap", "configmap"),
             ("persistentvolumeclaims", "PersistentVolumeClaim", "persistentvolumeclaim")]
CASES = ("crashloop-exit-1", "pvc-pending")


def objects() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for case in CASES:
        for name in ("pods.json", "events.json", "refs.json"):
            out += [i for i in load(case, name)["items"] if i not in out]
    return out


class Api(BaseHTTPRequestHandler):
    objects: ClassVar[list[dict[str, Any]]] = []
    logs: ClassVar[dict[tuple[str, str], str]] = {}

    def _reply(self, code: int, body: Any, ctype: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._reply(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason,
                           "code": code})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/api":
            return self._reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                     "serverAddressByClientCIDRs": []})
        if url.path == "/apis":
            return self._reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if url.path == "/api/v1":
            resources = [{"name": p, "singularName": s, "namespaced": True, "kind": k,
                          "verbs": ["get", "list"]} for p, k, s in RESOURCES]
            resources.append({"name": "pods/log", "singularName": "", "namespaced": True,
                              "kind": "Pod", "verbs": ["get"]})
            return self._reply(200, {"kind": "APIResourceList", "groupVersion": "v1",
                                     "resources": resources})
        parts = url.path.strip("/").split("/")  # api v1 namespaces app <plural> [name [log]]
        kind = {p: k for p, k, _ in RESOURCES}.get(parts[4] if len(parts) > 4 else "")
        if len(parts) < 5 or parts[2] != "namespaces" or kind is None:
            return self._status(404, "NotFound", "the server could not find the resource")
        mine = sorted((o for o in self.objects if o["kind"] == kind
                       and o["metadata"]["namespace"] == parts[3]),
                      key=lambda o: o["metadata"]["name"])
        if len(parts) == 5:
            wanted = dict(t.split("=", 1) for t in query.get("labelSelector", [""])[0].split(",")
                          if t)
            items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                     for o in mine if wanted.items() <= o["metadata"].get("labels", {}).items()]
            return self._reply(200, {"kind": f"{kind}List", "apiVersion": "v1",
                                     "metadata": {"resourceVersion": "7001"}, "items": items})
        found = next((o for o in mine if o["metadata"]["name"] == parts[5]), None)
        if found is None:
            return self._status(404, "NotFound", f'{parts[4]} "{parts[5]}" not found')
        if len(parts) == 6:
            return self._reply(200, found)
        container = query.get("container", [""])[0]
        text = self.logs.get((parts[5], container))
        if text is None:
            return self._status(400, "BadRequest",
                                PREVIOUS_NOT_FOUND.format(c=container, p=parts[5]))
        lines = text.splitlines(keepends=True)[-int(query["tailLines"][0]):]
        return self._reply(200, "".join(lines)[:int(query["limitBytes"][0])], "text/plain")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not KUBECTL.is_file():
        pytest.skip(f"{KUBECTL} missing: run .ci/install-helm (real kubectl 1.33.9)")
    Api.objects = objects()
    Api.logs = {(p["metadata"]["name"], c): text for case in CASES
                for p in load(case, "pods.json")["items"]
                for c, text in log_outputs(case).items()}
    with serve_handler(Api) as url:
        yield write_kubeconfig(tmp_path_factory.mktemp("api") / "config", url)


def facts(tools: Tools) -> list[Fact[Any]]:
    pods = [p["metadata"]["name"] for case in CASES for p in load(case, "pods.json")["items"]]
    return [reads.pods_fact(tools, "app"), reads.events_fact(tools, "app"),
            reads.objects_fact(tools, "app"),
            reads.log_fact(tools, "app", pods[0], "api-generation"),  # restarted: a log
            reads.log_fact(tools, "app", pods[1], "api-enrichment")]  # never ran: a 400


def raw(target: LocalTarget, tools: Tools) -> list[Raw]:
    got = gather(target, facts(tools))
    return [got[f.key] for f in facts(tools)]


def test_the_stand_in_prints_what_the_real_kubectl_prints(
        kubeconfig: Path, standins: Standins, tmp_path: Path) -> None:
    real_tools = Tools(kubectl=str(KUBECTL), helm="/nonexistent/helm")
    env = {**real_tools.env(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache")}
    real = raw(LocalTarget(env=env), real_tools)

    standins.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
                   "stack")
    for obj in objects():
        standins.record(copy.deepcopy(obj))
    for (pod, container), text in Api.logs.items():
        standins.set_log("app", pod, container, text)
    tools = standins.tools()
    stand_in = raw(standins.target(tools), tools)

    assert [r.rc for r in real] == [0, 0, 0, 0, 1]
    assert [r.rc for r in stand_in] == [0, 0, 0, 0, 1]
    for r, s in zip(real[:2], stand_in[:2], strict=True):  # pods, events: the same JSON
        assert json.loads(r.stdout) == json.loads(s.stdout)
    assert real[2].stdout == stand_in[2].stdout  # the go-template, byte for byte
    assert real[2].stdout.startswith(
        "Secret\tapp-config\tBETTER_AUTH_SECRET BETTER_AUTH_URL MONGODB_URI REDIS_URL \n")
    assert "PersistentVolumeClaim\tenrichment-cache\tPending\tfast\n" in real[2].stdout
    assert real[3].stdout == stand_in[3].stdout == \
        log_outputs("crashloop-exit-1")["api-generation"]  # 40 lines: all of them
    assert real[4].stderr.strip().splitlines()[-1] == stand_in[4].stderr.strip() == (
        'Error from server (BadRequest): previous terminated container "api-enrichment" in'
        ' pod "api-enrichment-5f7b9c8d6-v2q6n" not found')
    values = [v for o in objects() if o["kind"] == "Secret" for v in o["data"].values()]
    assert values and not [v for v in values for r in real
                           if v in r.stdout or base64.b64decode(v).decode() in r.stdout]
