"""Value rules for inventory fields: each knows its wording and its JSON Schema."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any

from tasks.model.fields import Rule

Refusal = tuple[Callable[[Any], bool], str]
"""(is_bad, why): a value of the right form refused anyway; ``why`` follows the value."""


def rule(expect: str, predicate: Callable[[Any], bool], *,
         refuse: Sequence[Refusal] = (), **schema: Any) -> Rule:
    """``expected <expect>`` unless ``predicate`` holds; each refusal is checked first
    (one that raises ValueError/TypeError does not apply: the value is not of its form)."""
    def check(value: Any) -> str | None:
        if value is None:
            return f"expected {expect}"
        for bad, why in refuse:
            try:
                if bad(value):
                    return why
            except (ValueError, TypeError):
                pass
        try:
            if predicate(value):
                return None
        except (ValueError, TypeError):
            pass
        return f"expected {expect}"

    return Rule(check, schema)


def _not(schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema ``not``: what a refusal refuses, where the schema can say it."""
    return {"not": schema}


def pattern(expect: str, regex: str, max_length: int | None = None, **schema: Any) -> Rule:
    """``regex`` must match the whole value; ``max_length`` is said in ``expect`` too."""
    compiled = re.compile(regex)
    if max_length is None:
        return rule(expect, lambda v: bool(compiled.fullmatch(v)), pattern=f"^(?:{regex})$",
                    **schema)
    limit = f"at most {max_length} characters"
    expect = f"{expect[:-1]}, {limit})" if expect.endswith(")") else f"{expect} ({limit})"
    return rule(expect,
                lambda v: len(v) <= max_length and bool(compiled.fullmatch(v)),
                pattern=f"^(?:{regex})$", maxLength=max_length, **schema)


def int_range(low: int, high: int, expect: str | None = None) -> Rule:
    return rule(expect or f"an integer {low}-{high}", lambda v: low <= v <= high,
                minimum=low, maximum=high)


PORT = int_range(1, 65535)
NODE_PORT = int_range(30000, 32767, "a NodePort 30000-32767")

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DNS_LABEL = pattern("a DNS label (lowercase letters, digits, '-', max 63)", _LABEL)
DOMAIN = pattern("a domain name such as example.com", rf"({_LABEL}\.)+[a-z]{{2,63}}", 253)
EMAIL = pattern("an e-mail address", r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@([a-z0-9-]+\.)+[a-z]{2,63}",
                254)
_UNIX_USER = r"[a-z_][a-z0-9_-]{0,31}"
SSH_USER = rule(
    "a user name", lambda v: bool(re.fullmatch(_UNIX_USER, v)),
    refuse=[(lambda v: v == "root",
             "cannot log in once host.harden has set PermitRootLogin no, so the next run"
             " would be locked out: create a sudo user first (adduser admin && usermod -aG"
             " sudo admin, then copy your key to /home/admin/.ssh/authorized_keys) and use"
             " it here")],
    pattern=f"^(?:{_UNIX_USER})$", **_not({"const": "root"}))
DURATION = pattern("a duration such as 30s, 10m, 1h or 7d", r"([0-9]+(ms|s|m|h|d|w|y))+")
QUANTITY = pattern("a size such as 10Gi", r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?")
CPU = pattern("a CPU amount such as 100m or 1", r"[0-9]+(\.[0-9]+)?m?")
SEMVER = pattern("a version such as 1.2.3", r"v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?")
K3S_VERSION = pattern("a K3s version such as v1.33.3+k3s1", r"v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+")
AGE_RECIPIENT = pattern("an age public key (age1...)", r"age1[02-9ac-hj-np-z]{58}")
# Allow-lists, not deny-lists: these reach Flux objects, k3s config and paths on the host.
GIT_URL = pattern("a git URL (ssh://git@host/owner/repo or https://host/owner/repo;"
                  " letters, digits and ._~+-/ only)",
                  r"(ssh|https)://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?"
                  r"(/[A-Za-z0-9._~+-]+)+/?", 512)
# Absolute, no empty, "." or ".." segment, not "/" itself.
SHA256 = pattern("a sha256 digest (64 lowercase hex digits)", r"[a-f0-9]{64}")
DATA_DIR = pattern("an absolute path of letters, digits, '.', '_', '-' and '/' (no '..',"
                   " not /)", r"(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)+/?", 255)
_REF = r"[A-Za-z0-9_][A-Za-z0-9._+@-]*"
# git check-ref-format, narrowed to plain ASCII: components never start with "." or "-".
BRANCH = pattern("a git branch name such as main or release/1.2 (letters, digits, '.', '_',"
                 " '+', '@', '-' and '/'; no '..')",
                 rf"(?!.*(\.\.|\.$|\.lock(/|$))){_REF}(/{_REF})*", 255)
_CONTROL = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029"
# The "not" also catches a final newline, which "$" in Python's re lets through.
FILE_PATH = pattern("a file path (no control characters)", f"[^{_CONTROL}]+", 4096,
                    **_not({"pattern": f"[{_CONTROL}]"}))
# At least one segment; no segment starts with "." (so no "..", nothing hidden).
REPO_PATH = pattern("a path inside the repository such as ./clusters/vps",
                    r"\./[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*/?")
TIME_OF_DAY = pattern("a time such as 04:00", r"([01][0-9]|2[0-3]):[0-5][0-9]")
DEB_PACKAGE = pattern("a Debian package name", r"[a-z0-9][a-z0-9+.-]+")
KERNEL_MODULE = pattern("a kernel module name such as sctp", r"[a-z0-9][a-z0-9_-]{0,55}")

# An image with an explicit tag or digest; ':latest' is refused (pin what you run).
_IMAGE = (r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+"
          r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})")


def _pinned_image(value: str) -> bool:
    return bool(re.fullmatch(_IMAGE, value)) and not value.endswith(":latest")


IMAGE = rule("an image with a pinned tag or digest (registry/name:1.2.3, not :latest)",
             _pinned_image, pattern=f"^(?:{_IMAGE})$", **_not({"pattern": ":latest$"}))


ZONE_ID = (lambda v: "%" in v, "has a zone id (%...), which is not allowed: it would reach"
           " ufw rules and the fail2ban jail")
_IP_CHARS = "^[0-9A-Fa-f.:]+$"  # no zone id (%), so the schema refuses it too
_CIDR_CHARS = "^[0-9A-Fa-f.:]+/[0-9]{1,3}$"


def _is_cidr(value: str) -> bool:
    ipaddress.ip_network(value, strict=True)
    return "/" in value


def _cidr(example: str, refusal: Refusal) -> Rule:
    return rule(f"a CIDR such as {example} (host bits zero)", _is_cidr,
                refuse=[ZONE_ID, refusal], pattern=_CIDR_CHARS)


def _too_wide(value: str) -> bool:
    net = ipaddress.ip_network(value, strict=True)
    return net.prefixlen < (16 if net.version == 4 else 48)


# Operators get SSH without the rate limit and the Kubernetes API: never a whole network.
OPERATOR_CIDR = _cidr("203.0.113.7/32", (
    _too_wide, "is too wide (at most /16 for IPv4, /48 for IPv6): every address in the"
    " operator allow-list gets SSH without rate limit and the Kubernetes API"))

PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))


def _not_private(value: str) -> bool:
    net = ipaddress.ip_network(value, strict=True)
    return not any(net.version == p.version and net.subnet_of(p)  # type: ignore[arg-type]
                   for p in PRIVATE_NETWORKS)


# UFW allows everything from the pod and service networks: they must be private.
CLUSTER_CIDR = _cidr("10.42.0.0/16", (
    _not_private, "is not a private network (inside 10.0.0.0/8, 172.16.0.0/12,"
    " 192.168.0.0/16, 100.64.0.0/10 or fc00::/7): the firewall allows everything from the"
    " pod and service networks"))


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(re.fullmatch(rf"({_LABEL}\.)*{_LABEL}", value.lower()))


ADDRESS = rule("an IP address or DNS name (at most 253 characters)",
               lambda v: len(v) <= 253 and _is_address(v), refuse=[ZONE_ID],
               pattern="^[0-9A-Za-z.:-]+$", maxLength=253)


def _is_node_ip(value: str) -> bool:
    address = ipaddress.ip_address(value)
    return not (address.is_loopback or address.is_unspecified or address.is_multicast)


NODE_IP = rule("a node IP address (not loopback, unspecified or multicast)", _is_node_ip,
               refuse=[ZONE_ID], pattern=_IP_CHARS)
