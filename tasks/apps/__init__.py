"""``apps.deploy``: our chart ``charts/apps`` (STACK.md section 9) with its Secrets, and
the certificate of its Ingress.

In order: the applications' namespace (PodSecurity "restricted"), the Secrets the pods
read (``app-config``, the ghcr.io pull secret ``ghcr-pull`` and the Kafka client's
``kafka-app-client``: decrypted in memory and piped to kubectl, never a file or an
argument), the release ``apps`` from the chart directory (``helm upgrade --install
--wait --timeout``, rolled back on a failed upgrade) with the values ``inv validate``
renders (tasks/stack/components/apps.py ``release``), then the Certificate cert-manager
makes from the Ingress, waited Ready; when it is not, one line says why (DNS, HTTP-01
unreachable, rate limit, staging; tasks/apps/certificates.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tasks.apps.certificates import CertificateStep
from tasks.cli import Session
from tasks.cluster.kube import Tools
from tasks.cluster.steps import HelmReleaseStep, ObjectsStep
from tasks.engine.errors import UserError
from tasks.engine.step import Step
from tasks.engine.target import Target
from tasks.layer import ClusterLayer, run_cluster_layer
from tasks.stack.components import apps
from tasks.stack.context import context
from tasks.stack.render import Document, Release, manifest_documents

#: The encrypted files holding the Secrets of the applications' namespace
#: (secrets/README.md); secret-kafka's other Secret, in the kafka namespace, is
#: kafka.deploy's.
SECRET_FILES = ("secret-app", "secret-registry", "secret-kafka")
#: ``helm --wait`` deadline: the workers' startup probes allow 5 minutes to reach Kafka.
RELEASE_SECONDS = 600
#: How long the Certificate may take to be Ready (an HTTP-01 issuance takes seconds to a
#: minute; the solver's image may need pulling first).
CERTIFICATE_SECONDS = 300


def chart_directory(release: Release) -> Path:
    """Our chart is installed from its directory (helm packages it on the fly)."""
    return apps.CHART


def addresses(session: Session) -> list[str]:
    """The hosts' addresses, as DNS should give them for the API host."""
    out: list[str] = []
    for host in session.inventory.data.hosts:
        out += [host.address, *([host.internal_address] if host.internal_address else [])]
    return list(dict.fromkeys(out))


def steps(session: Session, target: Target, secrets: Sequence[Document] | None,
          archive: Callable[[Release], Path] = chart_directory) -> list[Step]:
    """The layer; ``secrets`` are the applications' decrypted Secrets (None in plan mode
    before they exist: that step is then left out)."""
    inv = session.inventory.data
    ctx = context(inv)
    tools: Tools = target.tools  # type: ignore[attr-defined]
    release = apps.release(ctx)
    namespaces = [d for d in manifest_documents("apps", ctx) if d.kind == "Namespace"]
    out: list[Step] = [ObjectsStep("apps-namespace", "apps: namespace", tools, namespaces)]
    if secrets is not None:
        names = ", ".join(d.name for d in secrets)
        out.append(ObjectsStep("apps-secrets", f"apps: Secrets {names}", tools, secrets,
                               secret=True))
    out.append(HelmReleaseStep("apps", f"apps: chart {release.chart} {release.version}"
                               f" ({', '.join(release.values['apps'])})", tools, release,
                               archive=archive, wait_seconds=RELEASE_SECONDS))
    certs = apps.certificates(release.values)
    if certs:
        out.append(CertificateStep(tools, release.namespace, certs, inv.certs.issuer,
                                   addresses(session), seconds=CERTIFICATE_SECONDS))
    return out


def run(session: Session, secrets: Sequence[Document] | None) -> bool:
    layer = ClusterLayer("apps.deploy", lambda s, t: steps(s, t, secrets))
    return run_cluster_layer(session, layer)


def secret_documents(documents: Callable[[str], list[dict[str, Any]]], namespace: str,
                     wanted: Sequence[str]) -> list[Document]:
    """The Secrets of ``namespace`` in :data:`SECRET_FILES`, each read decrypted with
    ``documents`` (SecretStore.documents); every Secret in ``wanted`` must be there."""
    out = []
    for name in SECRET_FILES:
        for obj in documents(name):
            meta = obj.get("metadata")
            if isinstance(meta, dict) and meta.get("namespace") == namespace:
                out.append(Document(f"secrets/{name}.sops.yaml", dict(obj)))
    have = {d.name for d in out}
    missing = [n for n in wanted if n not in have]
    if missing:
        raise UserError(f"secrets/: no Secret {namespace}/{missing[0]} in"
                        f" {', '.join(f'{n}.sops.yaml' for n in SECRET_FILES)}, and the"
                        " apps read it (helm-values/apps.yaml): run inv secrets.init")
    return out


def deploy(session: Session) -> bool:
    """The applications' Secrets, decrypted in memory (before anything connects), then
    the layer. In plan mode, Secrets not made yet are said and their step left out."""
    from tasks.secrets.store import SecretStore

    ctx = context(session.inventory.data)
    namespace = ctx["apps"]["namespace"]
    store = SecretStore.open(session.inventory)
    try:
        docs = secret_documents(store.documents, namespace,
                                apps.secret_names(apps.values(ctx)))
    except UserError as exc:
        if not session.check:
            raise
        session.reporter.note("apps", f"would apply the apps' Secrets once they exist: {exc}")
        return run(session, None)
    return run(session, docs)


__all__ = ["SECRET_FILES", "deploy", "run", "secret_documents", "steps"]
