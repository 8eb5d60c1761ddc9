"""inv charts.pull and chart_archive(), against a real chart repository on 127.0.0.1.

No chart repository is reachable here, so the test serves one: our own chart packaged
with ``helm package``, indexed with ``helm repo index``, served by Python's http.server,
and pulled through the same code as the pinned upstream charts.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from invoke.context import Context
from local_http import closed_port, serve
from platform_ctx import variant

import tasks.charts as charts_task
from tasks.engine.errors import UserError
from tasks.engine.report import Reporter, Summary
from tasks.repo import REPO_ROOT
from tasks.stack import charts, helm

APPS = REPO_ROOT / "charts" / "apps"
APPS_VERSION = str(yaml.safe_load((APPS / "Chart.yaml").read_text())["version"])


@dataclass
class Repo:
    url: str
    root: Path
    archive: Path

    @property
    def chart(self) -> charts.Chart:
        return charts.Chart("local", self.url, "apps", APPS_VERSION)


def helm_run(*args: str) -> None:
    proc = subprocess.run([helm.helm_binary(), *args], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    try:
        helm.helm_binary()
    except UserError as exc:
        pytest.skip(str(exc))
    root = tmp_path / "repo"
    root.mkdir()
    helm_run("package", str(APPS), "--destination", str(root))
    with serve(root) as url:
        helm_run("repo", "index", str(root), "--url", url)
        yield Repo(url, root, root / f"apps-{APPS_VERSION}.tgz")


@dataclass
class Pulled:
    out: str
    summary: Summary


def pull(tmp: Path, chart: charts.Chart, *, check: bool = False) -> Pulled:
    out = io.StringIO()
    summary = Summary()
    charts.pull([chart], Reporter(out), summary, check=check, cache=tmp / "charts",
                lock=tmp / "charts.lock.yaml")
    return Pulled(out.getvalue(), summary)


def details(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("- ")]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_first_pull_records_the_digest_and_the_next_needs_no_network(
        tmp_path: Path, repo: Repo) -> None:
    chart = repo.chart
    lock = tmp_path / "charts.lock.yaml"
    first = pull(tmp_path, chart)
    digest = sha(repo.archive)
    archive = tmp_path / "charts" / f"apps-{APPS_VERSION}.tgz"
    assert details(first.out) == [
        f"- pulled {archive} from {repo.url}; sha256 {digest} recorded in {lock}"]
    assert sha(archive) == digest
    [entry] = yaml.safe_load(lock.read_text())["charts"]
    assert {k: entry[k] for k in ("chart", "version", "repo", "sha256")} == {
        "chart": "apps", "version": APPS_VERSION, "repo": repo.url, "sha256": digest}
    assert entry["source"].startswith("first inv charts.pull, ")
    # helm's own index of the repository publishes the same digest.
    index = yaml.safe_load((repo.root / "index.yaml").read_text())
    assert index["entries"]["apps"][0]["digest"] == digest
    assert charts.chart_archive(chart, cache=tmp_path / "charts", lock=lock) == archive
    assert [p.name for p in (tmp_path / "charts").iterdir()] == [archive.name]

    repo.root.joinpath("index.yaml").unlink()  # the repository is gone: no pull needed
    before = lock.read_text()
    second = pull(tmp_path, chart)
    assert [o.status.value for o in second.summary.outcomes] == ["ok"]
    assert details(second.out) == [f"- {archive} (sha256 matches {lock})"]
    assert lock.read_text() == before


def test_a_tampered_archive_is_refused_then_pulled_again(tmp_path: Path, repo: Repo) -> None:
    lock = tmp_path / "charts.lock.yaml"
    pull(tmp_path, repo.chart)
    archive = tmp_path / "charts" / f"apps-{APPS_VERSION}.tgz"
    good = sha(archive)
    archive.write_bytes(archive.read_bytes() + b"tampered")
    with pytest.raises(UserError) as err:
        charts.chart_archive(repo.chart, cache=tmp_path / "charts", lock=lock)
    assert err.value.lines == [f"{archive}: sha256 {sha(archive)} differs from {lock} ({good}):"
                               " refused; delete it and run inv charts.pull"]
    again = pull(tmp_path, repo.chart)
    assert details(again.out) == [
        f"- {archive} differs from {lock}: pulling it again",
        f"- pulled {archive} from {repo.url}; sha256 matches {lock}"]
    assert sha(archive) == good


def test_a_repository_serving_another_digest_is_refused(tmp_path: Path, repo: Repo) -> None:
    lock = tmp_path / "charts.lock.yaml"
    pull(tmp_path, repo.chart)
    archive = tmp_path / "charts" / f"apps-{APPS_VERSION}.tgz"
    archive.unlink()
    entries = charts.read_lock(lock)
    entries[repo.chart.key] = charts.Locked("0" * 64, "test")
    charts.write_lock(entries, lock)
    with pytest.raises(UserError) as err:
        pull(tmp_path, repo.chart)
    assert err.value.lines == [
        f"local/apps {APPS_VERSION}: the archive from {repo.url} has sha256"
        f" {sha(repo.archive)}, not {'0' * 64} as {lock} says: refused, nothing changed (if"
        " the chart was really re-published, find out why before removing its entry)"]
    assert list((tmp_path / "charts").iterdir()) == []
    assert charts.read_lock(lock)[repo.chart.key].sha256 == "0" * 64


def test_an_unreachable_repository_is_one_line(tmp_path: Path, repo: Repo) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(UserError) as err:
        pull(tmp_path, charts.Chart("local", url, "apps", APPS_VERSION))
    [line] = err.value.lines
    assert line.startswith(f"local/apps {APPS_VERSION}: helm pull from {url} failed: Error:")
    assert line.endswith("connect: connection refused"), line
    assert not (tmp_path / "charts.lock.yaml").exists()
    assert list((tmp_path / "charts").iterdir()) == []


def test_check_mode_pulls_nothing(tmp_path: Path, repo: Repo) -> None:
    done = pull(tmp_path, repo.chart, check=True)
    assert details(done.out) == [f"- would pull apps {APPS_VERSION} from {repo.url} and record"
                                 f" its sha256 in {tmp_path}/charts.lock.yaml"]
    assert not (tmp_path / "charts").exists() and not (tmp_path / "charts.lock.yaml").exists()


def test_chart_archive_says_how_to_get_a_missing_chart(tmp_path: Path) -> None:
    chart = charts.Chart("jetstack", "https://charts.jetstack.io", "cert-manager", "v1.13.1")
    lock = tmp_path / "charts.lock.yaml"
    with pytest.raises(charts.ChartMissing) as err:
        charts.chart_archive(chart, cache=tmp_path, lock=lock)
    assert str(err.value) == (f"jetstack/cert-manager v1.13.1 (https://charts.jetstack.io) is"
                              f" not in {lock}: run inv charts.pull")
    charts.write_lock({chart.key: charts.Locked("a" * 64, "test")}, lock)
    with pytest.raises(charts.ChartMissing) as err:
        charts.chart_archive(chart, cache=tmp_path, lock=lock)
    assert str(err.value) == f"{tmp_path}/cert-manager-v1.13.1.tgz absent: run inv charts.pull"


def test_the_pinned_charts_and_the_lock_file() -> None:
    assert [(c.repo_url, c.chart, c.version) for c in charts.pinned_charts(variant())] == [
        ("https://charts.jetstack.io", "cert-manager", "v1.13.1"),
        ("https://fluxcd-community.github.io/helm-charts", "flux2", "2.16.4"),
        ("https://prometheus-community.github.io/helm-charts", "kube-prometheus-stack",
         "85.4.0"),
        ("https://grafana-community.github.io/helm-charts", "loki", "18.11.0"),
        ("https://grafana.github.io/helm-charts", "alloy", "1.11.1"),
        ("https://strimzi.io/charts", "strimzi-kafka-operator", "0.47.0")]
    locked = charts.read_lock()
    assert locked[("https://fluxcd-community.github.io/helm-charts", "flux2", "2.16.4")] \
        .sha256 == "3cfed3ace4b2b5a667b17886d6d648d7d97e167f138bc5c37902a9b7cc20203f"
    with pytest.raises(UserError, match=r"^versions.flux 2.7.0: no flux2 chart version is"
                                        r" known for it"):
        charts.flux_chart(variant(versions={"flux": "2.7.0"}))


def test_the_task_plans_every_pinned_chart(capsys: pytest.CaptureFixture[str]) -> None:
    charts_task.pull(Context(), inventory=str(REPO_ROOT / "inventory.yaml"), check=True)
    out = capsys.readouterr().out
    assert "chart fluxcd-community/flux2 2.16.4" in out
    assert out.splitlines()[-1].startswith("summary: ")
    assert len([line for line in out.splitlines() if line.startswith("local ")]) == 6
