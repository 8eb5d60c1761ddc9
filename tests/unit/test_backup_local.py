"""backup.create's host script run for real on this machine, against a scratch K3s layout:
the real sqlite3 backup API on a live WAL database, real tar, the real age 1.1.1 (the
stream encrypted as it arrives), the STAND-IN k3s for the etcd path; then the tasks'
logic (retention, plan mode, restore's refusals) through a Session on the same target.

The cluster token is a canary: never in any output, never in a file left behind, never
in clear in the backup folder.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from tasks.backup import archive, run
from tasks.backup.host import Kept, Layout, backup_manifest
from tasks.cli import session as make_session
from tasks.engine.errors import CommandFailed, UserError
from tasks.engine.report import Reporter, Status
from tasks.engine.target import LocalTarget
from tasks.tooling.lookup import tool_path
from tests.unit.inventory_text import BASE, inventory
from tests.unit.secrets_repo import new_key

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standins" / "k3s"
CANARY = "K10-backup-canary-" + "5e1d7c"


def real_age() -> str:
    try:
        return str(tool_path("age"))
    except UserError:
        pytest.skip("needs age 1.1.1 (inv tools.install)")


@pytest.fixture
def node(tmp_path: Path) -> tuple[Layout, LocalTarget, Path]:
    """A scratch server: data dir with a live WAL SQLite datastore, config, token, and
    the stand-in k3s as the binary."""
    data, etc = tmp_path / "data", tmp_path / "etc"
    (data / "server" / "db").mkdir(parents=True)
    etc.mkdir()
    (etc / "config.yaml").write_text(f"node-name: vps1\ndata-dir: {data}\n"
                                     f"token-file: {etc / 'cluster-token'}\n")
    (etc / "cluster-token").write_text(CANARY)
    db = sqlite3.connect(data / "server" / "db" / "state.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE kine (id INTEGER PRIMARY KEY, name TEXT, value BLOB)")
    db.executemany("INSERT INTO kine (name, value) VALUES (?, ?)",
                   [(f"/registry/pods/p{i}", b"x" * 100) for i in range(200)])
    db.commit()
    db.close()
    (tmp_path / "work").mkdir()
    lay = Layout(str(data), (Kept(str(etc / "config.yaml"), "0600"),
                             Kept(str(etc / "cluster-token"), "0600"),
                             Kept(str(data / "server" / "token"), "0600", required=False)),
                 binary=str(STANDIN), work=str(tmp_path / "work"))
    target = LocalTarget(env={"STACK_K3S_STANDIN_CONFIG": str(etc / "config.yaml"),
                              "STACK_K3S_STANDIN_LOG": str(tmp_path / "standin.log")})
    return lay, target, tmp_path


def opened(age: str, identity: Path, path: Path) -> tarfile.TarFile:
    return tarfile.open(fileobj=io.BytesIO(archive.decrypt(age, identity, path)))


def test_a_live_sqlite_datastore_streamed_into_age(node: tuple[Layout, LocalTarget, Path]
                                                   ) -> None:
    lay, target, tmp = node
    age = real_age()
    pub = new_key(tmp / "id.agekey")
    writer = sqlite3.connect(Path(lay.state_db), isolation_level=None)
    writer.execute("BEGIN")
    writer.execute("INSERT INTO kine (name) VALUES ('/registry/uncommitted')")  # in flight
    st = run.read_state(target, lay)
    assert (st.version, st.datastore, "python3" in st.tools) == ("v1.33.3+k3s1", "sqlite", True)
    m = backup_manifest(lay, st, cluster="vps", host="vps1", created="20261202T071500Z")
    final = tmp / "backups" / "vps" / "20261202T071500Z.tar.age"
    lines: list[str] = []
    size = run.take(target, lay, st, m, final, age=age, recipients=[pub],
                    on_output=lines.append)
    writer.execute("ROLLBACK")
    writer.close()
    assert size == final.stat().st_size > 0
    assert (oct(final.stat().st_mode & 0o777), oct(final.parent.stat().st_mode & 0o777)) == (
        "0o600", "0o700")
    assert final.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert CANARY.encode() not in final.read_bytes()
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]  # no .part left
    with opened(age, tmp / "id.agekey", final) as tar:
        assert sorted(m.name for m in tar.getmembers() if m.isfile()) == [
            "datastore/state.db", f"files{tmp}/etc/cluster-token",
            f"files{tmp}/etc/config.yaml", "manifest.json"]
        f = tar.extractfile(f"files{tmp}/etc/cluster-token")
        assert f is not None and f.read() == CANARY.encode()
        f = tar.extractfile("manifest.json")
        assert f is not None and json.load(f)["datastore"] == "sqlite"
        copy = tmp / "copy.db"
        f = tar.extractfile("datastore/state.db")
        assert f is not None
        copy.write_bytes(f.read())
    db = sqlite3.connect(copy)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT count(*), min(name) FROM kine").fetchone() == (
        200, "/registry/pods/p0")  # committed rows only, none in flight
    db.close()
    assert list((tmp / "work").iterdir()) == []  # the host's temp folder is gone
    assert not any(CANARY in line for line in lines)


def test_the_sqlite3_cli_when_the_host_has_no_python3(node: tuple[Layout, LocalTarget, Path]
                                                     ) -> None:
    lay, target, tmp = node
    age = real_age()
    if shutil.which("sqlite3") is None:
        pytest.skip("needs the sqlite3 CLI (apt-get install sqlite3)")
    pub = new_key(tmp / "id.agekey")
    st = replace(run.read_state(target, lay), tools=("sqlite3",))
    m = backup_manifest(lay, st, cluster="vps", host="vps1", created="20261202T071500Z")
    final = tmp / "b" / "20261202T071500Z.tar.age"
    run.take(target, lay, st, m, final, age=age, recipients=[pub])
    with opened(age, tmp / "id.agekey", final) as tar:
        f = tar.extractfile("datastore/state.db")
        assert f is not None
        (tmp / "copy.db").write_bytes(f.read())
    db = sqlite3.connect(tmp / "copy.db")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT count(*) FROM kine").fetchone() == (200,)
    db.close()


def test_a_failing_copy_leaves_nothing(node: tuple[Layout, LocalTarget, Path]) -> None:
    lay, target, tmp = node
    age = real_age()
    pub = new_key(tmp / "id.agekey")
    st = run.read_state(target, lay)
    m = backup_manifest(lay, st, cluster="vps", host="vps1", created="20261202T071500Z")
    Path(lay.state_db).write_bytes(b"not a database" * 100)
    final = tmp / "backups" / "vps" / "20261202T071500Z.tar.age"
    with pytest.raises(CommandFailed) as info:
        run.take(target, lay, st, m, final, age=age, recipients=[pub])
    assert str(info.value).endswith("file is not a database")
    assert list(final.parent.iterdir()) == []
    assert list((tmp / "work").iterdir()) == []


def test_a_recipient_age_refuses_is_one_line_and_leaves_nothing(
        node: tuple[Layout, LocalTarget, Path]) -> None:
    lay, target, tmp = node
    age = real_age()
    pub = new_key(tmp / "id.agekey")
    bad = pub[:-1] + ("q" if pub[-1] != "q" else "p")  # the inventory's pattern, a bad checksum
    st = run.read_state(target, lay)
    m = backup_manifest(lay, st, cluster="vps", host="vps1", created="20261202T071500Z")
    final = tmp / "b" / "20261202T071500Z.tar.age"
    with pytest.raises(UserError) as info:
        run.take(target, lay, st, m, final, age=age, recipients=[pub, bad])
    (line,) = info.value.lines
    assert line.startswith("age could not encrypt the backup (exit 1): age: error:"), line
    assert list(final.parent.iterdir()) == [] and list((tmp / "work").iterdir()) == []


def test_the_etcd_path_through_the_standin(node: tuple[Layout, LocalTarget, Path]) -> None:
    lay, target, tmp = node
    age = real_age()
    pub = new_key(tmp / "id.agekey")
    member = Path(lay.db) / "etcd" / "member"
    member.mkdir(parents=True)
    (member / "standin-state").write_text("revision 42\n")
    st = run.read_state(target, lay)
    assert st.datastore == "etcd"
    m = backup_manifest(lay, st, cluster="vps", host="vps1", created="20261202T071500Z")
    final = tmp / "b" / "20261202T071500Z.tar.age"
    run.take(target, lay, st, m, final, age=age, recipients=[pub])
    with opened(age, tmp / "id.agekey", final) as tar:
        f = tar.extractfile("datastore/etcd-snapshot")
        assert f is not None
        with tarfile.open(fileobj=io.BytesIO(f.read())) as snapshot:
            g = snapshot.extractfile("etcd/member/standin-state")
            assert g is not None and g.read() == b"revision 42\n"
    calls = [json.loads(line)["argv"][1:] for line in (tmp / "standin.log").read_text()
             .splitlines()]
    (save,) = [c for c in calls if c[:1] == ["etcd-snapshot"]]
    assert save[:5] == ["etcd-snapshot", "save", "--name", "stack-backup", "--dir"]
    assert save[5].startswith(f"{tmp}/work/stack-backup.") and save[5].endswith("/snap")
    assert list((tmp / "work").iterdir()) == []


def _session(tmp: Path, pub: str, *, keep: int = 2, cluster: str = "vps",
             check: bool = False) -> tuple[run.Session, io.StringIO]:
    text = BASE + (f"k3s: {{cluster_name: {cluster}}}\n"
                   f"backup: {{keep: {keep}, dir: {tmp / 'backups'}}}\n"
                   f"secrets: {{age_recipients: [{pub}], age_key_file: {tmp / 'id.agekey'}}}\n")
    s = make_session(str(inventory(tmp, text)), check=check)
    out = io.StringIO()
    s.reporter = Reporter(out)
    return s, out


def use(s: run.Session, target: LocalTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    """``target`` as the session's connection to vps1, its round trips counted from 0."""
    target.round_trips = 0
    s.connections["vps1"] = target  # type: ignore[assignment]
    monkeypatch.setattr(s, "connect", lambda _h: target)


def test_create_keeps_the_newest_and_plans_without_writing(
        node: tuple[Layout, LocalTarget, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    lay, target, tmp = node
    real_age()
    pub = new_key(tmp / "id.agekey")
    monkeypatch.setattr(run, "layout", lambda _d: lay)
    folder = tmp / "backups" / "vps"
    folder.mkdir(parents=True)
    for old in ["20261130T000000Z.tar.age", "20261201T000000Z.tar.age", "keep-me.txt"]:
        (folder / old).write_bytes(b"old")
    s, out = _session(tmp, pub, check=True)
    use(s, target, monkeypatch)
    run.create(s)
    assert [o.status for o in s.summary.outcomes] == [Status.WOULD_CHANGE]
    assert s.summary.round_trips == {"vps1": 1}  # the facts, in one batch
    assert out.getvalue().endswith("keeps the 2 newest (backup.keep); would remove"
                                   " 20261130T000000Z.tar.age\n")
    assert len(list(folder.iterdir())) == 3  # plan mode wrote nothing
    s, out = _session(tmp, pub)
    use(s, target, monkeypatch)
    run.create(s)
    assert [o.status for o in s.summary.outcomes] == [Status.CHANGED], out.getvalue()
    assert s.summary.round_trips == {"vps1": 2}  # the facts, then the stream
    (new,) = [p.name for p in archive.backups(folder)
              if p.name not in ("20261130T000000Z.tar.age", "20261201T000000Z.tar.age")]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["20261201T000000Z.tar.age", new, "keep-me.txt"])
    assert "removed 20261130T000000Z.tar.age (backup.keep: 2)" in out.getvalue()
    assert CANARY not in out.getvalue()

    # Restore in plan mode: the newest, decrypted in memory, checked against the host.
    s, out = _session(tmp, pub, check=True)
    use(s, target, monkeypatch)
    run.restore(s, None)
    assert [o.status for o in s.summary.outcomes] == [Status.WOULD_CHANGE]
    assert f"restore: {new}" in out.getvalue() and CANARY not in out.getvalue()
    # Another cluster's inventory refuses it, in one line, before anything changes.
    s, _ = _session(tmp, pub, cluster="other", check=True)
    use(s, target, monkeypatch)
    with pytest.raises(UserError) as info:
        run.restore(s, str(folder / new))
    assert info.value.lines == [f"{folder / new}: the backup is of cluster 'vps', the"
                                " inventory's is 'other' (k3s.cluster_name): refused;"
                                " nothing was changed"]
    # Nobody's key but the recipients' opens it.
    stranger = tmp / "stranger.agekey"
    new_key(stranger)
    with pytest.raises(UserError) as info:
        archive.decrypt(str(tool_path("age")), stranger, folder / new)
    assert info.value.lines == [f"{folder / new}: age could not decrypt it with {stranger}:"
                                " age: error: no identity matched any of the recipients"]


def test_the_tasks_refuse_without_a_backup_and_without_confirmation(tmp_path: Path) -> None:
    pub = new_key(tmp_path / "id.agekey")
    path = inventory(tmp_path, BASE + f"backup: {{dir: {tmp_path / 'b'}}}\n"
                                      f"secrets: {{age_recipients: [{pub}]}}\n")
    r = subprocess.run([str(REPO / ".venv" / "bin" / "inv"), "backup.restore", "-i", str(path)],
                       cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       check=False)
    assert (r.returncode, r.stderr) == (1, "error: backup.restore replaces the cluster's"
                                           " datastore: pass --confirm vps to run it without"
                                           " a terminal\n")
    r = subprocess.run([str(REPO / ".venv" / "bin" / "inv"), "backup.restore", "-i", str(path),
                        "--confirm", "vps"], cwd=REPO, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, check=False)
    assert (r.returncode, r.stderr) == (1, f"error: no backup in {tmp_path / 'b' / 'vps'}: run"
                                           " inv backup.create first, or give --file\n")
    r = subprocess.run([str(REPO / ".venv" / "bin" / "inv"), "backup.list", "-i", str(path)],
                       cwd=REPO, capture_output=True, text=True, check=False)
    assert (r.returncode, r.stdout) == (0, f"no backup in {tmp_path / 'b' / 'vps'}\n")
