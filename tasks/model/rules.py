"""Value rules for inventory fields: each knows its wording and its JSON Schema."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from tasks.model.fields import Rule


def rule(expect: str, predicate: Callable[[Any], bool], **schema: Any) -> Rule:
    def check(value: Any) -> str | None:
        if value is not None:
            try:
                if predicate(value):
                    return None
            except (ValueError, TypeError):
                pass
        return f"expected {expect}"

    return Rule(check, schema)


def pattern(expect: str, regex: str) -> Rule:
    compiled = re.compile(regex)
    return rule(expect, lambda v: bool(compiled.fullmatch(v)), pattern=f"^(?:{regex})$")


def int_range(low: int, high: int, expect: str | None = None) -> Rule:
    return rule(expect or f"an integer {low}-{high}", lambda v: low <= v <= high,
                minimum=low, maximum=high)


PORT = int_range(1, 65535)
NODE_PORT = int_range(30000, 32767, "a NodePort 30000-32767")

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DNS_LABEL = pattern("a DNS label (lowercase letters, digits, '-', max 63)", _LABEL)
DOMAIN = pattern("a domain name such as example.com", rf"({_LABEL}\.)+[a-z]{{2,63}}")
EMAIL = pattern("an e-mail address", r"[^@\s]+@([a-z0-9-]+\.)+[a-z]{2,63}")
UNIX_USER = pattern("a user name", r"[a-z_][a-z0-9_-]{0,31}")
DURATION = pattern("a duration such as 30s, 10m, 1h or 7d", r"([0-9]+(ms|s|m|h|d|w|y))+")
QUANTITY = pattern("a size such as 10Gi", r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?")
CPU = pattern("a CPU amount such as 100m or 1", r"[0-9]+(\.[0-9]+)?m?")
SEMVER = pattern("a version such as 1.2.3", r"v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?")
K3S_VERSION = pattern("a K3s version such as v1.33.3+k3s1", r"v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+")
AGE_RECIPIENT = pattern("an age public key (age1...)", r"age1[02-9ac-hj-np-z]{58}")
GIT_URL = pattern("a git URL (ssh://git@host/owner/repo or https://host/owner/repo)",
                  r"(ssh://[^\s/]+(:[0-9]+)?|https://[^\s/]+)/[^\s]+")
# At least one segment; no segment starts with "." (so no "..", nothing hidden).
REPO_PATH = pattern("a path inside the repository such as ./clusters/vps",
                    r"\./[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*/?")
TIME_OF_DAY = pattern("a time such as 04:00", r"([01][0-9]|2[0-3]):[0-5][0-9]")
DEB_PACKAGE = pattern("a Debian package name", r"[a-z0-9][a-z0-9+.-]+")

# An image with an explicit tag or digest; ':latest' is refused (pin what you run).
_IMAGE = (r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+"
          r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})")


def _pinned_image(value: str) -> bool:
    return bool(re.fullmatch(_IMAGE, value)) and not value.endswith(":latest")


IMAGE = rule("an image with a pinned tag or digest (registry/name:1.2.3, not :latest)",
             _pinned_image, pattern=f"^(?:{_IMAGE})$", **{"not": {"pattern": ":latest$"}})


def _is_cidr(value: str) -> bool:
    ipaddress.ip_network(value, strict=True)
    return "/" in value


CIDR = rule("a CIDR such as 203.0.113.7/32 (host bits zero)", _is_cidr)


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(re.fullmatch(rf"({_LABEL}\.)*{_LABEL}", value.lower()))


ADDRESS = rule("an IP address or DNS name", _is_address)


def _is_node_ip(value: str) -> bool:
    address = ipaddress.ip_address(value)
    return not (address.is_loopback or address.is_unspecified or address.is_multicast)


NODE_IP = rule("a node IP address (not loopback, unspecified or multicast)", _is_node_ip)
