"""The K3s binary at the pinned version: downloaded on the host and checked against the
release's sha256sum-<arch>.txt, or uploaded from an air-gap bundle and checked against
the inventory's sha256. A downgrade is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.shell import progress, q
from tasks.engine.step import Change, Step, Upload

BINARY = "/usr/local/bin/k3s"
RELEASES = "https://github.com/k3s-io/k3s/releases/download"
ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}
# Uploads land here as the login user (mode 0600): root checks their sha256 before use,
# and fs.protected_symlinks (host.harden) stops a planted link in this sticky folder.
UPLOADS = "/var/tmp"  # noqa: S108


def parse_version(text: str) -> tuple[int, ...] | None:
    """``v1.33.3+k3s1`` -> (1, 33, 3, 1)."""
    m = re.search(r"v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)", text)
    return tuple(int(g) for g in m.groups()) if m else None


@dataclass(frozen=True)
class Installed:
    arch: str  # amd64, arm64, or the machine name when unsupported
    version: str | None  # "v1.33.3+k3s1", None when there is no k3s binary
    sha256: str | None


def _installed(raw: Raw) -> Installed:
    lines = raw.stdout.splitlines()
    machine = lines[0].strip() if lines else ""
    version = sha = None
    for line in lines[1:]:
        if line.startswith("k3s version "):
            version = line.split()[2]
        elif re.fullmatch(r"[0-9a-f]{64}  \S+", line):
            sha = line.split()[0]
    return Installed(ARCHES.get(machine, machine or "unknown"), version, sha)


INSTALLED = Fact("k3s:binary", f"uname -m; {BINARY} --version 2>/dev/null | head -n 1;"
                 f" sha256sum {BINARY} 2>/dev/null", _installed)


def asset(arch: str) -> str:
    return "k3s" if arch == "amd64" else f"k3s-{arch}"


def urls(version: str, arch: str) -> tuple[str, str]:
    """(binary URL, sha256sum file URL) of a K3s release."""
    base = f"{RELEASES}/{quote(version, safe='')}"
    return f"{base}/{asset(arch)}", f"{base}/sha256sum-{arch}.txt"


def upload_path(sha256: str, name: str) -> str:
    return f"{UPLOADS}/stack-upload-{sha256[:16]}-{name}"


def _install_checked(source: str, sha256: str) -> str:
    """Shell: check ``source`` against ``sha256`` (a shell word), install it as k3s."""
    return (f'echo "{sha256}  {source}" | sha256sum -c --quiet - >/dev/null 2>&1 || {{\n'
            f'  echo "k3s binary: checksum mismatch (want {sha256}): not installed" >&2;'
            f' rm -f {source}; exit 1; }}\n'
            f"install -m 0755 {source} {BINARY}.stack-new && mv -f {BINARY}.stack-new {BINARY}\n"
            f"rm -f {source}\n")


@dataclass(frozen=True)
class Airgap:
    binary: Path
    binary_sha256: str
    arch: str


class K3sBinary(Step):
    id = "k3s-binary"
    name = "k3s: binary"

    def __init__(self, version: str, airgap: Airgap | None = None) -> None:
        self.version, self.airgap = version, airgap

    def facts(self) -> Sequence[Fact[Any]]:
        return [INSTALLED]

    def plan(self, facts: Facts) -> list[Change]:
        now: Installed = facts[INSTALLED]
        if now.arch not in ARCHES.values():
            raise UserError(f"K3s has no build for this machine ({now.arch}): amd64 and arm64"
                            " only; nothing was changed")
        wanted, current = parse_version(self.version), parse_version(now.version or "")
        if current and wanted and current > wanted:
            raise UserError(f"K3s {now.version} is installed, newer than versions.k3s"
                            f" {self.version}: downgrades are refused (restore a backup"
                            " instead); nothing was changed")
        if self.airgap is not None:
            if self.airgap.arch != now.arch:
                raise UserError(f"k3s.airgap is for {self.airgap.arch}, the host is {now.arch}")
            if now.sha256 == self.airgap.binary_sha256:
                if now.version != self.version:
                    raise UserError(f"k3s.airgap.binary is K3s {now.version}, but"
                                    f" versions.k3s is {self.version}: give the binary of"
                                    " that release")
                return []
            remote = upload_path(self.airgap.binary_sha256, "k3s")
            return [Change(f"install k3s {self.version} from {self.airgap.binary.name}"
                           f" (was {now.version or 'none'})",
                           _install_checked(q(remote), self.airgap.binary_sha256),
                           uploads=(Upload(self.airgap.binary, remote,
                                           self.airgap.binary_sha256),))]
        if now.version == self.version:
            return []
        binary, sums = urls(self.version, now.arch)
        script = (
            progress(f"downloading k3s {self.version} ({now.arch})")
            + "command -v curl >/dev/null || { echo 'curl is needed to download K3s"
              " (apt-get install curl), or use k3s.airgap' >&2; exit 1; }\n"
            + 'd=$(mktemp -d /var/tmp/stack-k3s.XXXXXX); trap \'rm -rf "$d"\' EXIT\n'
            + f'curl -fsSL --retry 3 -o "$d/sums" {q(sums)}\n'
            + f'curl -fsSL --retry 3 -o "$d/k3s" {q(binary)}\n'
            + f"want=$(awk '$2 == \"{asset(now.arch)}\" {{print $1}}' \"$d/sums\")\n"
            + '[ -n "$want" ] || { echo "no k3s line in the release\'s checksums" >&2; exit 1; }\n'
            + _install_checked('"$d/k3s"', "$want"))
        return [Change(f"install k3s {self.version} (was {now.version or 'none'})", script)]

    def verify(self, facts: Facts) -> list[str]:
        now: Installed = facts[INSTALLED]
        if now.version != self.version:
            return [f"{BINARY} reports {now.version or 'nothing'}, want {self.version}"]
        return super().verify(facts)


@dataclass(frozen=True)
class Images:
    path: Path
    sha256: str


def images_dir(data_dir: str) -> str:
    return f"{data_dir.rstrip('/')}/agent/images"


class K3sImages(Step):
    """The air-gap images tarball where K3s imports it at start (only with k3s.airgap)."""

    id = "k3s-images"
    name = "k3s: air-gap images"

    def __init__(self, images: Images, data_dir: str) -> None:
        self.images = images
        self.folder = images_dir(data_dir)
        self.dest = f"{self.folder}/{images.path.name}"
        # The tarball is large: its checksum is kept beside it when installed, not
        # recomputed on every run.
        self.mark = f"{self.dest}.stack-sha256"
        self.fact = Fact(f"k3s:images:{self.dest}", f"cat {q(self.mark)}",
                         lambda raw: raw.stdout.strip() if raw.rc == 0 else None)

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.fact]

    def plan(self, facts: Facts) -> list[Change]:
        if facts[self.fact] == self.images.sha256:
            return []
        remote = upload_path(self.images.sha256, self.images.path.name)
        script = (
            f'echo "{self.images.sha256}  {remote}" | sha256sum -c --quiet - >/dev/null 2>&1'
            f' || {{ echo "{self.images.path.name}: checksum mismatch" >&2; rm -f {q(remote)};'
            " exit 1; }\n"
            f"mkdir -p {q(self.folder)}\n"
            f"install -m 0644 {q(remote)} {q(self.dest)} && rm -f {q(remote)}\n"
            f"echo {self.images.sha256} >{q(self.mark)}\n")
        return [Change(f"install {self.images.path.name} (air-gap images)", script,
                       uploads=(Upload(self.images.path, remote, self.images.sha256),))]
