"""The cluster layers as data: which steps, in which order, what they wait for, and how
their failures read. Facts in (as kubectl, kdiff and helm print them), commands out."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tasks import flux, ingress
from tasks.cluster.access import rewrite
from tasks.cluster.kube import Tools
from tasks.flux import keys
from tasks.ingress import cert_manager_cause
from tests.unit.cluster_catalog import SECRET, ToolsTarget, session
from tests.unit.inventory_text import OPENSSH_HEADER

TOOLS = Tools("/opt/kubectl", "/opt/helm", helm_major=4)
ARCHIVE = lambda r: Path(f"/charts/{r.chart}-{r.version}.tgz")  # noqa: E731


def test_ingress_certs_steps_in_order() -> None:
    steps = ingress.steps(session(), ToolsTarget(TOOLS), archive=ARCHIVE)  # type: ignore[arg-type]
    assert [s.id for s in steps] == ["traefik", "cert-manager-namespace", "cert-manager",
                                     "cert-manager-api", "cert-manager-issuers"]
    traefik = steps[0]
    assert [" ".join(c.argv) for c in traefik.waits] == [  # type: ignore[attr-defined]
        "/opt/kubectl wait -n kube-system service/traefik"
        " --for=jsonpath={.spec.ports[?(@.name==\"web\")].nodePort}=32170 --timeout=300s",
        "/opt/kubectl wait -n kube-system service/traefik"
        " --for=jsonpath={.spec.ports[?(@.name==\"websecure\")].nodePort}=31931"
        " --timeout=300s",
        "/opt/kubectl rollout status deployment/traefik -n kube-system --timeout=300s"]
    issuers = steps[-1]
    assert issuers.must_be_ready == (  # type: ignore[attr-defined]
        "ClusterIssuer/-/letsencrypt-staging", "ClusterIssuer/-/letsencrypt-prod")
    release = steps[2].release  # type: ignore[attr-defined]
    assert (release.chart, release.version, release.namespace) == (
        "cert-manager", "v1.13.1", "cert-manager")


@pytest.mark.parametrize(("stderr", "cause"), [
    ('error: resource mapping not found for name: "stack-api-check": no matches for kind'
     ' "Certificate" in version "cert-manager.io/v1"',
     "the cert-manager CRDs are missing (installCRDs: true in helm-values/cert-manager.yaml)"),
    ('Error from server (InternalError): Internal error occurred: failed calling webhook'
     ' "webhook.cert-manager.io": failed to call webhook: Post "https://cert-manager-webhook'
     '.cert-manager.svc:443/validate?timeout=30s": dial tcp 10.43.12.7:443: connect:'
     ' connection refused',
     "the cert-manager webhook is not ready yet (cert-manager-webhook)"),
    ('Error from server (InternalError): Internal error occurred: failed calling webhook'
     ' "webhook.cert-manager.io": failed to call webhook: Post "https://cert-manager-webhook'
     '.cert-manager.svc:443/validate?timeout=30s": tls: failed to verify certificate:'
     ' x509: certificate signed by unknown authority',
     "the webhook's CA is not injected yet (cert-manager-cainjector)"),
])
def test_cert_manager_api_failures_become_one_cause(stderr: str, cause: str) -> None:
    assert cert_manager_cause(stderr) == cause


def test_until_retries_until_success_and_gives_up_at_its_deadline(tmp_path: Path) -> None:
    until = Path(ingress.UNTIL)
    flag = tmp_path / "ready"
    script = f"[ -e {flag} ] && cat || {{ touch {flag}; echo not yet >&2; exit 3; }}"
    proc = subprocess.run([sys.executable, str(until), "20", "--", "sh", "-c", script],
                          input=b"the object", capture_output=True, check=False)
    assert (proc.returncode, proc.stdout) == (0, b"the object")  # second try, same stdin
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(until), "1", "--", "sh", "-c",
                           "echo never >&2; exit 4"], capture_output=True, check=False)
    assert (proc.returncode, proc.stderr) == (4, b"never\n")
    assert time.monotonic() - t0 < 5


def test_flux_bootstrap_steps_in_order() -> None:
    steps = flux.steps(session(), ToolsTarget(TOOLS), [SECRET], archive=ARCHIVE)  # type: ignore[arg-type]
    assert [s.id for s in steps] == ["flux-namespace", "flux2", "flux-secrets", "flux-sync"]
    release = steps[1].release  # type: ignore[attr-defined]
    assert (release.chart, release.version, release.repo_url) == (
        "flux2", "2.16.4", "https://fluxcd-community.github.io/helm-charts")
    assert release.values["installCRDs"] is True
    assert all(release.values[c]["create"] for c in (
        "sourceController", "kustomizeController", "helmController", "notificationController",
        "imageReflectionController", "imageAutomationController"))
    assert steps[2].diff.exec is not None  # type: ignore[attr-defined]  # the Secrets: stdin
    assert "not-a-real-secret" not in steps[2].diff.command  # type: ignore[attr-defined]
    plan_mode = flux.steps(session(), ToolsTarget(TOOLS), None, archive=ARCHIVE)  # type: ignore[arg-type]
    assert "flux-secrets" not in [s.id for s in plan_mode]


@pytest.mark.parametrize(("message", "cause"), [
    ("failed to checkout and determine revision: unable to clone"
     " 'ssh://git@github.com/team-mercurious/k3s-gitops': ssh: handshake failed: ssh: unable"
     " to authenticate, attempted methods [none publickey], no supported methods remain",
     "the deploy key is not accepted by ssh://git@github.com/team-mercurious/k3s-gitops yet:"
     " add the public key printed above as a read-only deploy key of the repository"),
    ("failed to checkout and determine revision: unable to clone 'ssh://git@git.example/x':"
     " dial tcp: lookup git.example on 10.43.0.10:53: no such host",
     "ssh://git@github.com/team-mercurious/k3s-gitops cannot be reached from the cluster"
     " (failed to checkout and determine revision: unable to clone 'ssh://git@git.example/x':"
     " dial tcp: lookup git.example on 10.43.0.10:53: no such host)"),
])
def test_flux_repository_failures_say_what_to_do(message: str, cause: str) -> None:
    assert flux.repository_cause(message, "ssh://git@github.com/team-mercurious/k3s-gitops") \
        == cause


def fingerprint(line: str) -> str:
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def test_github_host_keys_match_the_fingerprints_github_publishes() -> None:
    """docs.github.com, "GitHub's SSH key fingerprints"."""
    assert [fingerprint(k) for k in keys.PUBLISHED_HOST_KEYS["github.com"]] == [
        "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
        "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
        "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"]
    assert keys.known_hosts("ssh://git@github.com/team-mercurious/k3s-gitops").startswith(
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9"
        "GKJl\n")


def test_a_git_host_without_published_keys_needs_them_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.engine.errors import UserError

    monkeypatch.delenv(keys.KNOWN_HOSTS_ENV, raising=False)
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115
    with pytest.raises(UserError, match=r"git\.example\.org: its SSH host keys are not known:"
                                        r" set STACK_SECRET_FLUX_SYSTEM__KNOWN_HOSTS"):
        keys.known_hosts("ssh://git@git.example.org/x/y")
    monkeypatch.setenv(keys.KNOWN_HOSTS_ENV, "git.example.org ssh-ed25519 AAAAC3Nz")
    assert keys.known_hosts("ssh://git@git.example.org/x/y") == \
        "git.example.org ssh-ed25519 AAAAC3Nz\n"


def test_the_deploy_key_is_made_in_memory_as_openssh_ed25519() -> None:
    import paramiko

    private, public = keys.new_deploy_key("flux-vps")
    assert private.startswith(OPENSSH_HEADER)
    assert public.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5") and public.endswith(" flux-vps")
    import io
    loaded = paramiko.Ed25519Key.from_private_key(io.StringIO(private))
    assert f"{loaded.get_name()} {loaded.get_base64()}" == public.rsplit(" ", 1)[0]


def test_the_kubeconfig_is_rewritten_for_the_tunnel_and_named_after_the_cluster() -> None:
    node = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "default", "cluster": {"server": "https://127.0.0.1:6443",
                                                     "certificate-authority-data": "Q0E="}}],
        "users": [{"name": "default", "user": {"client-certificate-data": "Q0VSVA==",
                                               "client-key-data": "S0VZ"}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default"})
    out = yaml.safe_load(rewrite(node, "https://127.0.0.1:40123", "vps"))
    assert out["clusters"] == [{"name": "vps", "cluster": {
        "server": "https://127.0.0.1:40123", "certificate-authority-data": "Q0E="}}]
    assert out["contexts"] == [{"name": "vps", "context": {"cluster": "vps", "user": "vps"}}]
    assert out["current-context"] == "vps"
    assert out["users"][0]["user"]["client-key-data"] == "S0VZ"
