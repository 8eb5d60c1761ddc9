"""The real kubectl 1.33.9 running our diff fact against a minimal local API.

No cluster runs here, but ``kubectl diff --server-side`` needs only discovery, a GET and
a dry-run PATCH: a small HTTP server in this test answers those for Namespaces. That is
enough to see what the real kubectl does with Tools.env()'s KUBECTL_EXTERNAL_DIFF and how
it lays out the folders kdiff reads (the stand-in kubectl in tests/standins/ does the same).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tasks.cluster.kube import Tools
from tasks.cluster.steps import ObjectsStep
from tasks.engine.facts import Facts
from tasks.engine.target import LocalTarget, gather
from tasks.repo import REPO_ROOT
from tasks.stack.render import Document
from tests.unit.local_http import serve_handler, write_kubeconfig

KUBECTL = REPO_ROOT / ".cache" / "bin" / "kubectl-v33"
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "probe"}}


class Api(BaseHTTPRequestHandler):
    """Discovery of v1 namespaces, GET (404: nothing exists), dry-run apply (echo)."""

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/api":
            return self._reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                     "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return self._reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if path == "/api/v1":
            return self._reply(200, {"kind": "APIResourceList", "groupVersion": "v1",
                                     "resources": [{"name": "namespaces",
                                                    "singularName": "namespace",
                                                    "namespaced": False, "kind": "Namespace",
                                                    "verbs": ["get", "patch", "create"]}]})
        name = path.rsplit("/", 1)[-1]
        return self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "reason": "NotFound", "code": 404,
                                 "message": f'namespaces "{name}" not found',
                                 "details": {"name": name, "kind": "namespaces"}})

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        body.setdefault("metadata", {})["uid"] = "dry-run"
        self._reply(200, body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not KUBECTL.is_file():
        pytest.skip(f"{KUBECTL} missing: run .ci/install-helm (real kubectl 1.33.9)")
    with serve_handler(Api) as url:
        yield write_kubeconfig(tmp_path_factory.mktemp("api") / "config", url)


def plan(env: dict[str, str]) -> list[str]:
    tools = Tools(kubectl=str(KUBECTL), helm="/nonexistent/helm")
    step = ObjectsStep("probe", "probe", tools, [Document("t", NAMESPACE)])
    facts: Facts = gather(LocalTarget(env=env), step.facts())
    return [c.summary for c in step.plan(facts)]


def test_a_single_executable_as_diff_program_is_run_by_the_real_kubectl(
        kubeconfig: Path, tmp_path: Path) -> None:
    # the control: kubectl runs one path, with LIVE and MERGED laid out as kdiff reads them
    tools = Tools(kubectl=str(KUBECTL), helm="/nonexistent/helm")
    env = tools.env(kubeconfig)
    wrapper = tmp_path / "kdiff"
    wrapper.write_text(f'#!/bin/sh\nexec {env["KUBECTL_EXTERNAL_DIFF"]} "$@"\n')
    wrapper.chmod(0o755)
    assert plan({**env, "KUBECTL_EXTERNAL_DIFF": str(wrapper)}) == ["create Namespace/-/probe"]


def test_the_real_kubectl_runs_the_diff_program_tools_env_names(kubeconfig: Path) -> None:
    # BUG (tasks/cluster/kube.py Tools.env): kubectl 1.33 keeps, after the program, only
    # the words of KUBECTL_EXTERNAL_DIFF matching ^[a-zA-Z0-9-=]+$: "<python> <path of
    # kdiff.py>" becomes "<python> LIVE MERGED", python fails on the LIVE folder, and the
    # fact fails ("can't find '__main__' module in '/tmp/LIVE-...'").
    tools = Tools(kubectl=str(KUBECTL), helm="/nonexistent/helm")
    assert plan(tools.env(kubeconfig)) == ["create Namespace/-/probe"]
