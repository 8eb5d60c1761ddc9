"""The local ``helm`` binary: finding it and rendering charts offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tasks.engine.errors import UserError
from tasks.repo import REPO_ROOT
from tasks.stack.render import Document, parse_documents, relative

HELM_ENV = "STACK_HELM"
CACHED = REPO_ROOT / ".cache" / "bin" / "helm"


def helm_binary() -> str:
    """``$STACK_HELM``, else ``helm`` on PATH, else ``.cache/bin/helm``."""
    explicit = os.environ.get(HELM_ENV)
    if explicit:
        return explicit
    found = shutil.which("helm")
    if found:
        return found
    if CACHED.is_file():
        return str(CACHED)
    raise UserError("helm not found: install helm 3.17+ (https://helm.sh/docs/intro/install/)"
                    f" or run .ci/install-helm, or set {HELM_ENV}")


def run_helm(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], input=stdin, capture_output=True,
                          text=True, check=False)


def template(chart: Path, release: str, namespace: str, values: dict[str, Any],
             *, kube_version: str = "1.33.3") -> list[Document]:
    """``helm template`` our own chart with ``values``; objects name their template."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(values, f)
        f.flush()
        proc = run_helm("template", release, str(chart), "--namespace", namespace,
                        "--kube-version", kube_version, "-f", f.name)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{relative(chart)}: helm template failed: {last[0]}")
    docs: list[Document] = []
    source = relative(chart)
    for chunk in proc.stdout.split("\n---"):
        origin = source
        for line in chunk.splitlines()[:3]:
            if line.startswith("# Source: "):
                # "# Source: apps/templates/deployment.yaml" -> charts/apps/templates/...
                origin = f"{source}/{line.removeprefix('# Source: ').split('/', 1)[-1]}"
        docs += parse_documents(chunk, origin)
    return docs


def lint(chart: Path, values: dict[str, Any]) -> list[str]:
    """``helm lint --strict``: the error/warning lines, empty when clean."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(values, f)
        f.flush()
        proc = run_helm("lint", "--strict", str(chart), "-f", f.name)
    if proc.returncode == 0:
        return []
    out = (proc.stdout + proc.stderr).splitlines()
    problems: list[str] = []
    for line in out:
        if "[ERROR]" in line or "[WARNING]" in line or line.startswith("Error"):
            problems.append(line.strip())
        elif problems and line[:1].isspace() and line.strip():
            problems[-1] += " " + line.strip()  # helm indents the rest of a message
    return problems or [out[-1] if out else "helm lint failed"]
