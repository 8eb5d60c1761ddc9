"""The whole cluster stack through deploy.all's own orchestration, on the STAND-IN kubectl
and helm (tests/standins/: no cluster here), with real secrets (sops and age, made by
``secrets.init`` from ``STACK_SECRET_*`` inputs with canaries in them).

Only two things are replaced: the API access (:func:`tasks.cluster.access.cluster`, an
SSH tunnel to the first server, becomes the stand-in's kubeconfig) and the pulled chart
archives (tiny archives of the pinned names and versions). Everything else is the real
code: the layers' run functions (decrypting their Secrets, generating Flux's keys), their
steps, facts and commands. Used by test_deploy_standins.py and benchmarks/stack.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke.context import Context

from tasks import deploy, secrets_tasks
from tasks.cli import Session
from tasks.cluster import access
from tasks.cluster.access import ClusterTarget
from tasks.engine.report import Reporter
from tasks.model import load
from tasks.secrets.store import SecretStore
from tasks.stack import charts
from tasks.stack.components import apps as apps_component
from tasks.stack.context import context
from tests.standins.harness import Standins, chart_archive
from tests.unit.platform_ctx import DEFAULT
from tests.unit.secrets_repo import INPUTS, Repo, make_repo, new_key
from tests.unit.test_monitoring_standins import CHART_OBJECTS, answers
from tests.unit.test_platform_standins import TRAEFIK

#: The cluster layers, in deploy.all's order (k3s.install and host.harden need SSH).
CLUSTER_LAYERS = ["ingress.certs", "monitoring.install", "kafka.deploy", "flux.bootstrap",
                  "apps.deploy"]


@dataclass
class Stack:
    standins: Standins
    repo: Repo
    inventory: Path

    def session(self, *, check: bool = False) -> tuple[Session, io.StringIO]:
        out = io.StringIO()
        loaded = load(self.inventory, require_key_files=False)
        return Session(loaded, check=check, reporter=Reporter(out)), out

    def run(self, *, check: bool = False, layers: list[str] | None = None
            ) -> tuple[Session, str]:
        """deploy.all's orchestration over ``layers`` (default: the cluster layers)."""
        s, out = self.session(check=check)
        chosen = deploy.select(only=",".join(layers or CLUSTER_LAYERS))
        stopped = deploy.converge_stack(s, chosen)
        deploy.finish(s, as_json=False)
        if stopped is not None:
            out.write(f"error: {stopped.lines[0]}\n")
        return s, out.getvalue()

    def secret_values(self) -> list[str]:
        """Every secret value the stack holds (decrypted), long enough to look for."""
        store = SecretStore.open(load(self.inventory, require_key_files=False),
                                 self.repo.root)
        out = []
        for path in sorted(self.repo.root.glob("secrets/*.sops.yaml")):
            for doc in store.documents(path.name.removesuffix(".sops.yaml")):
                for value in (doc.get("stringData") or {}).values():
                    out += [line for line in str(value).splitlines() if len(line) >= 16
                            and not line.startswith(("ssh-", "github.com", "gitlab.com"))]
        return out


def _inventory(repo: Repo, public: str) -> str:
    data: dict[str, Any] = {**DEFAULT, "versions": {"sops": "3.11.0"},
                            "secrets": {"age_key_file": str(repo.key_file),
                                        "age_recipients": [public]}}
    return yaml.safe_dump(data, sort_keys=False)


@contextmanager
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standins: Standins
          ) -> Iterator[Stack]:
    """An empty stand-in K3s (its Traefik included), the secrets made, the seams set."""
    repo = make_repo(tmp_path, monkeypatch)
    repo.key_file.parent.mkdir()
    public = new_key(repo.key_file)
    repo.inventory.write_text(_inventory(repo, public))
    for name, value in INPUTS.items():
        monkeypatch.setenv(name, value)
    secrets_tasks.init(Context(), inventory=str(repo.inventory))
    for name, value in INPUTS.items():  # the operator's shell still has them
        monkeypatch.setenv(name, value)

    opened = SecretStore.open.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(SecretStore, "open", classmethod(
        lambda cls, loaded, root=None: opened(cls, loaded, repo.root)))
    folder = tmp_path / "charts"
    monkeypatch.setattr(charts, "chart_archive", lambda release, **_: chart_archive(
        folder, release.chart, release.version))

    @contextmanager
    def cluster(session: Session) -> Iterator[ClusterTarget]:
        tools = session.tools()  # as access.cluster finds them: once per run
        yield ClusterTarget(name="cluster standin", tools=tools,
                            kubeconfig=standins.kubeconfig, env=tools.env(standins.kubeconfig))

    monkeypatch.setattr(access, "cluster", cluster)
    for obj in TRAEFIK:
        standins.apply(obj, "k3s-helm-controller")
    monkeypatch.delenv("STACK_HELM")  # the real, pinned helm for `helm template`
    loaded = load(repo.inventory, require_key_files=False)
    rendered = apps_component.render(context(loaded.data))
    monkeypatch.setenv("STACK_HELM", str(standins.helm))
    standins.configure(
        chart_objects={"kube-prometheus-stack": CHART_OBJECTS,
                       "apps": [d.obj for d in rendered.documents if d.kind != "Namespace"]},
        service_proxy=answers(all_up=True))
    standins.clear_calls()
    yield Stack(standins, repo, repo.inventory)
