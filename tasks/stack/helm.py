"""The local ``helm`` binary: finding it and rendering charts offline."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tasks.engine.errors import UserError
from tasks.stack.render import Document, parse_documents, relative
from tasks.tooling import tool_path

HELM_ENV = "STACK_HELM"


def helm_binary() -> str:
    """``$STACK_HELM`` when set (used as it is: the helm 3 test session runs through it),
    else the pinned helm, found as every tool is (:func:`tasks.tooling.tool_path`: the
    project tools folder ``.cache/tools/``, then PATH, at ``versions.helm``)."""
    explicit = os.environ.get(HELM_ENV)
    if explicit:
        return explicit
    try:
        return str(tool_path("helm"))
    except UserError as exc:
        raise UserError(f"{exc}, or set {HELM_ENV} to the helm to use") from None


def run_helm(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """helm on this machine, with the environment every child gets (no secrets in it)."""
    from tasks.engine.target import child_environment

    return subprocess.run([helm_binary(), *args], input=stdin, capture_output=True,
                          text=True, check=False, env=child_environment())


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
