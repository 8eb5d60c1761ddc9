"""kubectl and helm: the facts the cluster steps read and the commands they run.

Facts are shell lines run on this machine in one batch (each a kubectl or helm call,
``KUBECONFIG`` set in the environment); a fact that fails for any reason but "not
there" (API unreachable, Unauthorized, forbidden) is an error naming the cause, never
"not installed". Changes are :class:`Command` argv lists with the manifests or values on
stdin, applied server-side with one field manager; waits carry their own deadline.

``kubectl diff --server-side`` is the one read of a component's objects: kubectl hands
the live and the merged objects to :data:`DIFF_PROGRAM` (``KUBECTL_EXTERNAL_DIFF``),
which reports, per object, whether it is new, changed or the same, and which Flux
Kustomization owns it, as JSON lines.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.engine.command import Command
from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, Raw
from tasks.engine.shell import cmd, piped
from tasks.localfile import write_atomic
from tasks.repo import REPO_ROOT
from tasks.stack.render import Document, Release
from tasks.tooling import tool_path

FIELD_MANAGER = "k3s-vps-platform"
DIFF_PROGRAM = Path(__file__).with_name("kdiff.py")
FLUX_OWNER_LABELS = ("kustomize.toolkit.fluxcd.io/namespace", "kustomize.toolkit.fluxcd.io/name")


def _find(name: str, env: str) -> str:
    """``$<env>`` when set (used as it is), else the pinned tool through
    :func:`tasks.tooling.tool_path` (project tools folder, then PATH, at its version)."""
    explicit = os.environ.get(env)
    if explicit:
        return explicit
    try:
        return str(tool_path(name))
    except UserError as exc:
        raise UserError(f"{exc}, or set {env} to the {name} to use") from None


@dataclass(frozen=True)
class Tools:
    """The kubectl and helm binaries the cluster steps run, and their environment."""

    kubectl: str
    helm: str
    #: helm's major version: 4 renamed --atomic (--rollback-on-failure).
    helm_major: int = 4

    @classmethod
    def find(cls) -> Tools:
        from tasks.stack.helm import helm_binary, run_helm

        helm = helm_binary()
        version = run_helm("version", "--short").stdout.strip()  # "v4.1.4+g05fa379"
        major = int(version[1]) if version[:1] == "v" and version[1:2].isdigit() else 4
        return cls(kubectl=_find("kubectl", "STACK_KUBECTL"), helm=helm, helm_major=major)

    def env(self, kubeconfig: Path) -> dict[str, str]:
        """KUBECONFIG, helm's folders inside the project cache, and our diff program.

        kubectl keeps, of ``KUBECTL_EXTERNAL_DIFF``'s words after the program, only those
        that look like flags: a path to kdiff.py would be dropped. So the program is one
        executable, written next to the (private) kubeconfig, that runs kdiff.py.
        """
        helm = REPO_ROOT / ".cache" / "helm"
        return {
            "KUBECONFIG": str(kubeconfig),
            "HELM_CACHE_HOME": str(helm / "cache"),
            "HELM_CONFIG_HOME": str(helm / "config"),
            "HELM_DATA_HOME": str(helm / "data"),
            "KUBECTL_EXTERNAL_DIFF": str(diff_program(kubeconfig.parent)),
        }


def diff_program(folder: Path) -> Path:
    """``folder/stack-kdiff``: runs kdiff.py with this Python (made once per folder)."""
    path = folder / "stack-kdiff"
    run = f"{shlex.quote(sys.executable)} {shlex.quote(str(DIFF_PROGRAM))}"
    text = f"#!/bin/sh\nexec {run} \"$@\"\n"
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text, 0o700)
    return path


# Errors --------------------------------------------------------------------------------

_UNREACHABLE = ("connection refused", "was refused", "no such host", "i/o timeout",
                "unable to connect", "connect: ", "tls handshake timeout", "eof")


def api_error(stderr: str, what: str) -> str | None:
    """One line for a kubectl/helm failure that is not "not found"; None when it is."""
    text = stderr.strip()
    low = text.lower()
    if not text or "notfound" in low.replace(" ", "") or "not found" in low:
        return None
    if "unauthorized" in low or "you must be logged in" in low or "provide credentials" in low:
        return f"{what}: the API refused our credentials (Unauthorized): is the kubeconfig" \
               " from this cluster? Re-run inv k3s.install to fetch it again"
    if "forbidden" in low:
        return f"{what}: the API said Forbidden: {text.splitlines()[-1][:200]}"
    if any(marker in low for marker in _UNREACHABLE):
        return f"{what}: the Kubernetes API is unreachable ({text.splitlines()[-1][:160]}):" \
               " is K3s running on the first server, and the SSH tunnel up?"
    return f"{what}: {text.splitlines()[-1][:200]}"


class ClusterFactError(Exception):
    """Raised by a parser when a read failed for a reason other than "not there"."""


# Diff ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ObjectState:
    """One object as ``kubectl diff`` saw it."""

    key: str  # "Kind/namespace/name" (namespace "-" when cluster-scoped)
    state: str  # "new", "changed" or "same"
    flux_owner: str | None = None  # "flux-system/apps" when a Kustomization manages it
    diff: str = ""  # unified diff, capped
    ready: str | None = None  # the live Ready/Available condition: "True", "False"...
    message: str = ""  # ...and its message


@dataclass(frozen=True)
class DiffResult:
    objects: tuple[ObjectState, ...]
    missing_api: str | None = None  # a kind whose CRD is not installed yet, or a namespace

    @property
    def changed(self) -> list[ObjectState]:
        return [o for o in self.objects if o.state != "same"]

    @property
    def converged(self) -> bool:
        return self.missing_api is None and not self.changed


def _diff(raw: Raw, what: str) -> DiffResult:
    # 0: same, 1: differs (kdiff printed the objects); >1, or 1 with nothing printed: an
    # error of kubectl itself.
    if raw.rc == 0 or (raw.rc == 1 and raw.stdout.lstrip().startswith("{")):
        objects = []
        for line in raw.stdout.splitlines():
            if line.startswith("{"):
                item = json.loads(line)
                objects.append(ObjectState(item["key"], item["state"], item.get("flux_owner"),
                                           item.get("diff", ""), item.get("ready"),
                                           item.get("message", "")))
        return DiffResult(tuple(objects))
    low = raw.stderr.lower()
    for marker in ("no matches for kind", "ensure crds are installed first"):
        if marker in low:
            return DiffResult((), missing_api=raw.stderr.strip().splitlines()[-1][:200])
    if "namespaces" in low and "not found" in low:
        return DiffResult((), missing_api=raw.stderr.strip().splitlines()[-1][:200])
    problem = api_error(raw.stderr, what) or f"{what}: kubectl diff failed (exit {raw.rc})"
    raise ClusterFactError(problem)


def manifest_stream(docs: Sequence[Document]) -> bytes:
    return yaml.safe_dump_all([d.obj for d in docs], sort_keys=False).encode()


def diff_fact(tools: Tools, component: str, docs: Sequence[Document], *,
              secret: bool = False) -> Fact[DiffResult]:
    """The component's objects against the cluster: one ``kubectl diff --server-side``.

    ``secret``: the manifests hold decrypted values, so they go on the command's stdin
    (an exec fact), never into the text of a script.
    """
    argv = (tools.kubectl, "diff", "--server-side", f"--field-manager={FIELD_MANAGER}",
            "--force-conflicts", "-f", "-")
    stream = manifest_stream(docs)

    def parse(raw: Raw) -> DiffResult:
        return _diff(raw, f"reading {component} objects")

    if secret:
        return Fact(f"kubectl-diff:{component}", "", parse,
                    exec=Command(argv, stdin=stream, stdin_label=f"Secrets of {component}",
                                 timeout=120))
    return Fact(f"kubectl-diff:{component}", piped(stream, cmd(*argv)).rstrip(), parse)


def apply(tools: Tools, docs: Sequence[Document], label: str) -> Command:
    """Server-side apply of ``docs`` from stdin, one field manager, taking back fields
    someone else changed (``kubectl edit``): these objects are ours. Objects a Flux
    Kustomization manages are never applied (the steps ask Flux to reconcile them)."""
    return Command((tools.kubectl, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}",
                    "--force-conflicts", "-f", "-"), stdin=manifest_stream(docs),
                   stdin_label=label, timeout=120)


def wait(tools: Tools, kind: str, name: str, namespace: str | None, condition: str,
         seconds: int) -> Command:
    """``kubectl wait --for=condition=<condition>`` with a deadline."""
    ns = ("-n", namespace) if namespace else ()
    return Command((tools.kubectl, "wait", f"--for=condition={condition}",
                    f"--timeout={seconds}s", f"{kind}/{name}", *ns), timeout=seconds + 30)


def rollout_status(tools: Tools, kind: str, name: str, namespace: str, seconds: int) -> Command:
    return Command((tools.kubectl, "rollout", "status", f"{kind}/{name}", "-n", namespace,
                    f"--timeout={seconds}s"), timeout=seconds + 30)


# Helm ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReleaseState:
    name: str
    namespace: str
    chart: str  # "cert-manager-v1.13.1"
    app_version: str
    status: str  # "deployed", "failed", "pending-upgrade"...
    revision: int


def _releases(raw: Raw) -> dict[tuple[str, str], ReleaseState]:
    if raw.rc != 0:
        raise ClusterFactError(api_error(raw.stderr, "listing Helm releases")
                               or f"listing Helm releases: helm exit {raw.rc}")
    items: list[dict[str, Any]] = json.loads(raw.stdout or "[]") or []
    return {(i["namespace"], i["name"]): ReleaseState(
        i["name"], i["namespace"], i.get("chart", ""), i.get("app_version", ""),
        i.get("status", ""), int(i.get("revision", 0))) for i in items}


def releases_fact(tools: Tools) -> Fact[dict[tuple[str, str], ReleaseState]]:
    """Every Helm release of the cluster: one ``helm list -A`` for all components."""
    return Fact("helm-list", cmd(tools.helm, "list", "-A", "--deployed", "--failed",
                                 "--pending", "-o", "json"), _releases)


def _values(raw: Raw, release: str) -> dict[str, Any] | None:
    if raw.rc != 0:
        problem = api_error(raw.stderr, f"reading the values of Helm release {release}")
        if problem:
            raise ClusterFactError(problem)
        return None
    data = json.loads(raw.stdout or "null")
    return data if isinstance(data, dict) else {}


def values_fact(tools: Tools, release: Release) -> Fact[dict[str, Any] | None]:
    """The values a release was installed with (None when it is not installed)."""
    return Fact(f"helm-values:{release.namespace}/{release.name}",
                cmd(tools.helm, "get", "values", release.name, "-n", release.namespace,
                    "-o", "json"), lambda raw: _values(raw, release.name))


def upgrade(tools: Tools, release: Release, archive: Path, seconds: int) -> Command:
    """Install or upgrade from the pulled archive, values on stdin, waited, rolled back
    on failure (helm 3 ``--atomic``, helm 4 ``--rollback-on-failure``)."""
    rollback = "--rollback-on-failure" if tools.helm_major >= 4 else "--atomic"
    return Command((tools.helm, "upgrade", "--install", release.name, str(archive),
                    "-n", release.namespace, "--create-namespace", "-f", "-",
                    "--wait", f"--timeout={seconds}s", rollback),
                   stdin=yaml.safe_dump(release.values, sort_keys=True).encode(),
                   stdin_label=f"values of {release.values_source}", timeout=seconds + 60)
