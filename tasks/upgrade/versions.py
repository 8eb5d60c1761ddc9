"""Comparing the versions the platform pins: K3s's ``v1.33.3+k3s1``, charts' semver.

A K3s version orders by its Kubernetes version, then its ``+k3sN`` revision
(:func:`tasks.k3s.binary.parse_version`, which k3s.install's downgrade refusal uses
too); a chart or Kafka version by its numbers, a pre-release (``1.0.0-rc.1``) before
its release, as semver orders them.
"""

from __future__ import annotations

import re

from tasks.k3s.binary import parse_version as k3s_version

_SEMVER = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+\S*)?")

Key = tuple[tuple[int, ...], int, tuple[tuple[int, int | str], ...]]


def semver(text: str) -> Key | None:
    """A sortable key of ``v1.13.1`` / ``85.4.0`` / ``1.0.0-rc.1``; None when it is
    not a version."""
    m = _SEMVER.fullmatch(text.strip())
    if not m:
        return None
    numbers = tuple(int(g or 0) for g in m.groups()[:3])
    pre = m.group(4)
    if pre is None:
        return numbers, 1, ()
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return numbers, 0, parts


def newer(a: str, b: str, *, k3s: bool = False) -> bool | None:
    """``a`` is newer than ``b`` (None when either is not a version)."""
    if k3s:
        ka, kb = k3s_version(a), k3s_version(b)
        return None if ka is None or kb is None else ka > kb
    sa, sb = semver(a), semver(b)
    return None if sa is None or sb is None else sa > sb


def minor(text: str) -> tuple[int, int] | None:
    """(major, minor) of a version: ``v1.33.3+k3s1`` -> (1, 33)."""
    key = semver(text.split("+")[0])
    return None if key is None else (key[0][0], key[0][1])
