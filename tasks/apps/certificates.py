"""The Ingress's certificate: waited Ready, and why not in one line.

cert-manager's ingress-shim makes a Certificate for each ``tls[]`` entry of an Ingress
that carries ``cert-manager.io/cluster-issuer``, named after its ``secretName``
(cert-manager.io/docs/usage/ingress, "How it works"); then a CertificateRequest, an
ACME Order and one Challenge per name (cert-manager.io/docs/troubleshooting: Certificate
-> CertificateRequest -> Order -> Challenge). One ``kubectl get
certificate,certificaterequest,order,challenge -n NS -o json`` reads them all.

When the Certificate is not Ready, :func:`cause` reads their status, as cert-manager
writes it, for the usual reasons, worded as the thing to fix. The shapes (``status.reason``
of a Challenge, ``status.reason`` and ``state`` of an Order, the ``Ready`` conditions of
a CertificateRequest and of the Certificate) and texts are taken from cert-manager's
controllers and from recorded reports (tests/unit/test_apps_deploy.py cites each):

- the HTTP-01 self check: ``Waiting for HTTP-01 challenge propagation: failed to perform
  self check GET request 'http://H/.well-known/acme-challenge/T': Get "...": <error>``
  (cert-manager pkg/controller/acmechallenges/sync.go), the error being ``dial tcp:
  lookup H on 10.43.0.10:53: no such host`` (DNS), ``dial tcp IP:80: connect: connection
  refused`` / ``i/o timeout`` / ``context deadline exceeded`` (unreachable, or another
  host's address), ``wrong status code '404', expected '200'``;
- Let's Encrypt's own verdict, once the challenge is accepted: ``Error accepting
  authorization: acme: authorization error for H: 400
  urn:ietf:params:acme:error:connection: IP: Fetching http://H/...: Timeout during
  connect (likely firewall problem)``, ``urn:ietf:params:acme:error:dns: DNS problem:
  NXDOMAIN looking up A for H``;
- rate limits: ``Failed to create Order: 429 urn:ietf:params:acme:error:rateLimited:
  Error creating new order :: too many certificates already issued ...``
  (letsencrypt.org/docs/rate-limits).

A certificate from ``letsencrypt-staging`` is Ready but signed by a CA no browser trusts:
that is said too.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.cluster.kube import ClusterFactError, Tools, api_error
from tasks.cluster.steps import read
from tasks.engine.command import Command
from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.shell import cmd
from tasks.engine.step import Change, Step

UNTIL = Path(__file__).resolve().parents[1] / "cluster" / "until.py"
KINDS = "certificate,certificaterequest,order,challenge"
STAGING_WORDS = "browsers will not trust it"


@dataclass(frozen=True)
class Issuance:
    """The cert-manager objects of one namespace, as one read returned them."""

    items: tuple[dict[str, Any], ...] = ()
    missing_api: str | None = None  # cert-manager's CRDs are not there


def _parse(raw: Raw, namespace: str) -> Issuance:
    if raw.rc != 0:
        if "doesn't have a resource type" in raw.stderr:
            return Issuance(missing_api=raw.stderr.strip().splitlines()[-1][:200])
        raise ClusterFactError(api_error(raw.stderr, f"reading the certificates in {namespace}")
                               or f"reading the certificates in {namespace}: kubectl exit"
                                  f" {raw.rc}")
    data = json.loads(raw.stdout or "{}")
    items = data.get("items") if isinstance(data, dict) else None
    return Issuance(tuple(i for i in items or [] if isinstance(i, dict)))


def issuance_fact(tools: Tools, namespace: str) -> Fact[Issuance]:
    """Certificates, CertificateRequests, Orders and Challenges of ``namespace``."""
    return Fact(f"cert-manager:issuance:{namespace}",
                cmd(tools.kubectl, "get", KINDS, "-n", namespace, "-o", "json"),
                lambda raw: _parse(raw, namespace))


# Reading the objects --------------------------------------------------------------------

def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _of_kind(items: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [i for i in items if i.get("kind") == kind]


def _owned(items: Sequence[dict[str, Any]], kind: str, owners: Sequence[dict[str, Any]],
           owner_kind: str) -> list[dict[str, Any]]:
    """Objects of ``kind`` whose ownerReferences name one of ``owners`` (cert-manager sets
    them on each object it makes), oldest first."""
    names = {_meta(o).get("name") for o in owners}
    out = [i for i in _of_kind(items, kind)
           if any(r.get("kind") == owner_kind and r.get("name") in names
                  for r in _meta(i).get("ownerReferences") or [])]
    return sorted(out, key=lambda i: str(_meta(i).get("creationTimestamp", "")))


def _condition(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def certificate(issuance: Issuance, name: str) -> dict[str, Any] | None:
    return next((c for c in _of_kind(issuance.items, "Certificate")
                 if _meta(c).get("name") == name), None)


def issuer_of(cert: dict[str, Any]) -> str:
    return str(((cert.get("spec") or {}).get("issuerRef") or {}).get("name") or "")


def _texts(issuance: Issuance, cert: dict[str, Any]) -> list[str]:
    """What cert-manager says about this certificate's issuance, most specific first: the
    Challenges' reasons, the Orders' reasons, the requests' and the Certificate's
    Ready/Issuing messages (of the latest request, whose messages say the most)."""
    requests = _owned(issuance.items, "CertificateRequest", [cert], "Certificate")
    latest = requests[-1:]
    orders = _owned(issuance.items, "Order", latest, "CertificateRequest")
    challenges = _owned(issuance.items, "Challenge", orders, "Order")
    out = [str((c.get("status") or {}).get("reason") or "") for c in challenges]
    out += [str((o.get("status") or {}).get("reason") or "") for o in orders]
    out += [str(_condition(r).get("message") or "") for r in latest]
    out += [str(_condition(cert, kind).get("message") or "") for kind in ("Issuing", "Ready")]
    return [t for t in out if t.strip()]


# Why it is not Ready ----------------------------------------------------------------------

_IP = r"(\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9a-fA-F:]*:[0-9a-fA-F:]+\]?)"
# "dial tcp 203.0.113.9:80: ..." (the self check), "...:error:connection: 203.0.113.9:
# Fetching ..." / "...:error:unauthorized: 203.0.113.9: Invalid response ..." (Let's Encrypt)
_DIALED = (re.compile(r"dial tcp " + _IP + r":\d+"),
           re.compile(r"urn:ietf:params:acme:error:\w+: " + _IP + r": "))
_UNREACHABLE = ("connection refused", "i/o timeout", "timeout during connect", "timed out",
                "context deadline exceeded", "connection reset", "no route to host",
                "network is unreachable", ": eof")


def _ip_in(text: str) -> str | None:
    for pattern in _DIALED:
        match = pattern.search(text)
        if match:
            return match.group(1).strip("[]")
    return None


def _unreachable(low: str) -> str:
    """How an HTTP-01 fetch failed to connect, in its own words ("connection refused"),
    or "" when ``low`` names no such failure."""
    return next((m.strip(": ") for m in _UNREACHABLE if m in low), "")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _limited(low: str) -> bool:
    # Let's Encrypt answers 429 with urn:ietf:params:acme:error:rateLimited
    return "ratelimited" in low or "rate limit" in low


def _rate_limit(text: str) -> str:
    """``... :: too many certificates (5) already issued for this exact set of domains in
    the last 168 hours: a.example, retry after 2022-09-26T01:29:08Z: see ...`` -> the limit
    and the time to retry."""
    detail = text.split(" :: ", 1)[1] if " :: " in text else text
    detail = detail.split(": see ", 1)[0].split(", retry after ", 1)[0]
    detail = re.split(r"(?<=\w): (?=[\w*.-]+\.)", detail, maxsplit=1)[0]
    retry = re.search(r"retry after (\S+?)[:,]? ", text + " ")
    when = f" (retry after {retry.group(1)})" if retry else ""
    return f"Let's Encrypt's rate limit: {_short(detail.strip(), 120)}{when}"


def cause(issuance: Issuance, name: str, hosts: Sequence[str], addresses: Sequence[str],
          wanted_issuer: str) -> str | None:
    """Why Certificate ``name`` is not Ready yet, in one line; None when it is Ready and
    issued by ``wanted_issuer``. ``addresses``: this platform's host addresses (a
    challenge that reached another address means DNS points elsewhere)."""
    host = hosts[0] if hosts else name
    if issuance.missing_api:
        return "cert-manager's API is not there (no Certificate kind): run inv ingress.certs"
    cert = certificate(issuance, name)
    if cert is None:
        return ("cert-manager has not made it from the Ingress yet (cert-manager running?"
                " inv ingress.certs)")
    issuer = issuer_of(cert)
    ready = _condition(cert)
    staging = f"; issuer {issuer}: {STAGING_WORDS}" if "staging" in issuer else ""
    if ready.get("status") == "True":
        if issuer != wanted_issuer:
            return (f"issued by {issuer}, not {wanted_issuer} (inventory certs.issuer):"
                    " cert-manager issues it again")
        return None
    texts = _texts(issuance, cert)
    low = " ".join(texts).lower()
    ours = [a for a in addresses if _is_ip(a)]
    dialed = next((ip for ip in map(_ip_in, texts) if ip and _is_ip(ip)), None)
    if _limited(low):
        why = _rate_limit(next(t for t in texts if _limited(t.lower())))
        if "staging" not in issuer:
            why += ": wait, and try with letsencrypt-staging meanwhile"
    elif "no such host" in low or "nxdomain" in low or "dns problem" in low:
        where = f" at {', '.join(ours)}" if ours else " at this host"
        why = f"DNS: {host} does not resolve (no such host): point its A record{where}"
    elif dialed and ours and dialed not in ours:
        why = (f"DNS: {host} points at {dialed}, not this host ({', '.join(ours)}): fix its"
               " A record")
    elif wrong := re.search(r"wrong status code '\d+'", low):
        why = (f"HTTP-01 not served: GET http://{host}/.well-known/acme-challenge/...:"
               f" {wrong.group(0)} (Traefik answers port 80 but does not route the solver's"
               " Ingress to it)")
    elif "acme-challenge" in low and _unreachable(low):
        at = f" at {dialed}" if dialed else ""
        why = (f"HTTP-01 unreachable: GET http://{host}/.well-known/acme-challenge/...:"
               f" {_unreachable(low)}{at} (port 80 of this host must reach Traefik: UFW"
               " allows 80, Traefik's web entry point)")
    elif texts:
        why = _short(texts[0], 200)
    else:
        why = f"{ready.get('reason') or 'no Ready condition yet'}"
    return why + staging


class CertificateStep(Step):
    """The Ingress's Certificates Ready, from the inventory's issuer."""

    id = "apps-certificate"

    def __init__(self, tools: Tools, namespace: str, certs: Sequence[tuple[str, list[str]]],
                 issuer: str, addresses: Sequence[str], seconds: int = 300) -> None:
        self.tools, self.namespace, self.certs = tools, namespace, list(certs)
        self.issuer, self.addresses, self.seconds = issuer, list(addresses), seconds
        hosts = ", ".join(h for _, names in self.certs for h in names)
        note = f": {STAGING_WORDS}" if "staging" in issuer else ""
        self.name = f"apps: certificate for {hosts} Ready ({issuer}{note})"
        self.fact = issuance_fact(tools, namespace)

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.fact]

    def _causes(self, facts: Facts) -> list[tuple[str, str]]:
        issuance: Issuance = read(facts, self.fact)
        out = []
        for name, hosts in self.certs:
            why = cause(issuance, name, hosts, self.addresses, self.issuer)
            if why is not None:
                out.append((name, why))
        return out

    def wait(self, name: str, per_try: int = 60) -> Command:
        """``kubectl wait`` Ready, retried until ``seconds`` (the Certificate appears a
        moment after the Ingress). Exit 1 (not Ready in time) is left to :meth:`verify`,
        which says why from a fresh read."""
        argv = (self.tools.kubectl, "wait", "--for=condition=Ready", f"--timeout={per_try}s",
                f"certificate/{name}", "-n", self.namespace)
        return Command((sys.executable, str(UNTIL), str(self.seconds), "--", *argv),
                       timeout=self.seconds + per_try + 30, ok_codes=(0, 1))

    def plan(self, facts: Facts) -> list[Change]:
        return [Change(f"wait for Certificate {self.namespace}/{name} Ready ({why})",
                       commands=(self.wait(name),)) for name, why in self._causes(facts)]

    def verify(self, facts: Facts) -> list[str]:
        return [f"Certificate {self.namespace}/{name} is not Ready: {why}"
                for name, why in self._causes(facts)]
