"""``flux.bootstrap``: Flux at ``versions.flux`` without the flux CLI, its secrets, and
the GitRepository + Kustomization that make the GitOps repository the source of truth.

In order: the flux-system namespace, the flux2 community chart (all six controllers)
from the pulled archive, the Secrets ``flux-system`` (deploy key + the Git host's
known_hosts) and ``sops-age`` (decrypted in memory and piped to kubectl, never a file),
then the sync objects, waited Ready; a repository that cannot be read is said in one
line (deploy key not added yet, host unreachable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tasks.cli import Session
from tasks.cluster import kube
from tasks.cluster.kube import DiffResult, Tools
from tasks.cluster.steps import HelmReleaseStep, ObjectsStep, read
from tasks.engine.facts import Facts
from tasks.engine.step import Step
from tasks.engine.target import Target
from tasks.layer import ClusterLayer, run_cluster_layer
from tasks.stack.components import flux
from tasks.stack.context import context
from tasks.stack.render import Document, Release

SYNC_KEYS = ("GitRepository/flux-system/flux-system", "Kustomization/flux-system/flux-system")


def repository_cause(message: str, repository: str) -> str:
    """Flux's GitRepository message as the thing to do about it."""
    low = message.lower()
    if "unable to authenticate" in low or "permission denied" in low or \
            "publickey" in low or "authentication required" in low:
        return (f"the deploy key is not accepted by {repository} yet: add the public key"
                " printed above as a read-only deploy key of the repository")
    if "knownhosts" in low or "host key" in low:
        return f"the host key of {repository} does not match secret-flux's known_hosts"
    if "no such host" in low or "i/o timeout" in low or "connection refused" in low:
        return f"{repository} cannot be reached from the cluster ({message[:160]})"
    return message[:200] or "not Ready yet"


class FluxSync(ObjectsStep):
    """The sync objects; a GitRepository that is not Ready says what to do."""

    def __init__(self, tools: Tools, docs: Sequence[Document], repository: str) -> None:
        super().__init__("flux-sync", "flux: GitRepository and Kustomization Ready", tools,
                         docs, waits=[kube.wait(tools, "gitrepository", "flux-system",
                                                flux.NAMESPACE, "Ready", 120),
                                      kube.wait(tools, "kustomization", "flux-system",
                                                flux.NAMESPACE, "Ready", 300)],
                         must_be_ready=SYNC_KEYS)
        self.repository = repository

    def verify(self, facts: Facts) -> list[str]:
        result: DiffResult = read(facts, self.diff)
        by_key = {o.key: o for o in result.objects}
        source = by_key.get(SYNC_KEYS[0])
        if source is not None and source.ready not in ("True", None):
            cause = repository_cause(source.message, self.repository)
            return [f"GitRepository flux-system: {cause}"]
        return super().verify(facts)


def default_archive(release: Release) -> Path:
    from tasks.stack.charts import chart_archive

    return chart_archive(release)


def steps(session: Session, target: Target, secrets: Sequence[Document] | None,
          archive: Callable[[Release], Path] = default_archive) -> list[Step]:
    """The layer; ``secrets`` are Flux's decrypted Secrets (None in plan mode before they
    exist: that step is then left out)."""
    inv = session.inventory.data
    ctx = context(inv)
    tools: Tools = target.tools  # type: ignore[attr-defined]
    bundle = flux.render(ctx)
    namespaces = [d for d in bundle.documents if d.kind == "Namespace"]
    sync = [d for d in bundle.documents if d.kind != "Namespace"]
    release = flux.release(ctx)
    out: list[Step] = [
        ObjectsStep("flux-namespace", "flux: namespace", tools, namespaces),
        HelmReleaseStep("flux2", f"flux: chart {release.chart} {release.version}"
                        f" (Flux {inv.versions.flux})", tools, release, archive=archive),
    ]
    if secrets is not None:
        out.append(ObjectsStep("flux-secrets", "flux: deploy key and sops-age Secrets", tools,
                               secrets, secret=True))
    out.append(FluxSync(tools, sync, inv.gitops.repository))
    return out


def run(session: Session, secrets: Sequence[Document] | None) -> bool:
    layer = ClusterLayer("flux.bootstrap", lambda s, t: steps(s, t, secrets))
    return run_cluster_layer(session, layer)


def bootstrap(session: Session) -> bool:
    """Flux's keys (generated once, stored encrypted; nothing generated in plan mode),
    what the operator must do with them, then the layer."""
    from tasks.flux import keys
    from tasks.secrets.store import SecretStore

    inv = session.inventory.data
    say = session.reporter.note
    store = SecretStore.open(session.inventory)
    found, created = keys.ensure(session.inventory, store, check=session.check)
    if found is None:
        say("flux", f"would generate Flux's deploy key and age identity into"
                    f" secrets/{keys.NAME}.sops.yaml")
        return run(session, None)
    if created:
        say("flux", f"generated Flux's deploy key and age identity"
                    f" (secrets/{keys.NAME}.sops.yaml)")
    say("flux", f"deploy key (add it, read-only, to {inv.gitops.repository}):"
                f" {found.deploy_public}")
    if found.age_public not in inv.secrets.age_recipients:
        say("flux", f"Flux decrypts with {found.age_public}: add it to secrets.age_recipients"
                    " and run inv secrets.rotate, or Flux cannot read secrets/*.sops.yaml")
    docs = [Document(f"secrets/{keys.NAME}.sops.yaml", d) for d in store.documents(keys.NAME)]
    return run(session, docs)
