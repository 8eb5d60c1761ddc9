"""backup.create and backup.restore on the lab VM, over real SSH.

K3s is the STAND-IN ``tests/standins/k3s`` (installed for real by k3s.install's air-gap
path, as in test_k3s.py: unit, token, config), and its SQLite datastore is a REAL
database this test writes into ``<data_dir>/server/db/state.db`` with python3 on the VM.
Real: SQLite's online backup API on the VM, tar, the stream over SSH into the real age,
the decryption with the operator's identity, the SFTP upload, systemd stopping and
starting K3s, the Ready wait. Backup, then rows deleted and the token changed, then
restore: the rows are back and ``PRAGMA integrity_check`` says ok. Then the etcd path
through the stand-in's ``etcd-snapshot save`` and ``--cluster-reset``.
"""

from __future__ import annotations

import io
import shlex
import time
from pathlib import Path

import pytest
import yaml

from tasks.backup import archive, run
from tasks.cli import session as make_session
from tasks.engine.report import Reporter, Status
from tests.e2e.conftest import LabVm
from tests.e2e.test_k3s import TOKEN, install, inventory, standin
from tests.unit.secrets_repo import new_key

pytestmark = pytest.mark.e2e
DB = "/var/lib/rancher/k3s/server/db"
SERVER_TOKEN = "K10-server-canary-" + "0d9e44"  # K3s's own copy: a canary too
ROWS = """\
import sqlite3
db = sqlite3.connect("/var/lib/rancher/k3s/server/db/state.db")
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE kine (id INTEGER PRIMARY KEY, name TEXT, value BLOB)")
db.executemany("INSERT INTO kine (name, value) VALUES (?, ?)",
               [("/registry/configmaps/default/c%d" % i, b"v" * 64) for i in range(300)])
db.commit()
"""
COUNT = """\
import sqlite3
db = sqlite3.connect("file:/var/lib/rancher/k3s/server/db/state.db?mode=ro", uri=True)
print(db.execute("PRAGMA integrity_check").fetchone()[0],
      db.execute("SELECT count(*) FROM kine").fetchone()[0])
"""


def root(vm: LabVm, command: str) -> str:
    return vm.run(f"sudo -n sh -c {shlex.quote(command)}").stdout


def py(vm: LabVm, program: str) -> str:
    return vm.run(f"sudo -n python3 -c {shlex.quote(program)}").stdout


@pytest.fixture(scope="module")
def lab(lab_vm: LabVm, tmp_path_factory: pytest.TempPathFactory) -> tuple[LabVm, Path]:
    """The VM with python3, the stand-in K3s installed and running, a real SQLite
    datastore with 300 rows; the inventory with backup.* and an age recipient."""
    vm, tmp = lab_vm, tmp_path_factory.mktemp("backup")
    if vm.run("command -v python3", check=False).rc != 0:
        t0 = time.monotonic()
        root(vm, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
                 " --no-install-recommends python3 >/dev/null")
        print(f"[backup] python3 installed in {time.monotonic() - t0:.0f}s")
    binary, sha = standin(tmp)
    path = inventory(vm, tmp, binary, sha, "v1.33.3+k3s1")
    ok, text, _ = install(path)
    assert ok, text
    pub = new_key(tmp / "operator.agekey")
    data = yaml.safe_load(path.read_text())
    data["backup"] = {"dir": str(tmp / "backups"), "keep": 3}
    data["secrets"] = {"age_recipients": [pub], "age_key_file": str(tmp / "operator.agekey")}
    path.write_text(yaml.safe_dump(data))
    root(vm, f"mkdir -p {DB} && printf %s {SERVER_TOKEN} >/var/lib/rancher/k3s/server/token"
             " && chmod 0600 /var/lib/rancher/k3s/server/token")
    py(vm, ROWS)
    assert py(vm, COUNT).split() == ["ok", "300"]
    return vm, path


def task(path: Path, action: str, *, check: bool = False) -> tuple[str, list[Status]]:
    s = make_session(str(path), check=check)
    out = io.StringIO()
    s.reporter = Reporter(out)
    try:
        if action == "create":
            run.create(s)
        else:
            run.restore(s, None)
    finally:
        s.close()
    return out.getvalue(), [o.status for o in s.summary.outcomes]


def no_leftovers(vm: LabVm, text: str) -> None:
    assert root(vm, "ls /var/tmp | grep -c '^stack-' || true").strip() == "0"
    for canary in (TOKEN, SERVER_TOKEN):
        assert canary not in text
        assert canary not in root(vm, "ps -eo args")
        assert canary not in root(vm, "cat /var/log/k3s-standin.log")


def test_1_sqlite_backup_then_restore_brings_the_rows_back(lab: tuple[LabVm, Path]) -> None:
    vm, path = lab
    t0 = time.monotonic()
    text, statuses = task(path, "create", check=True)
    assert statuses == [Status.WOULD_CHANGE], text
    assert "copied with SQLite's backup API by python3, integrity_check on the copy" in text
    text, statuses = task(path, "create")
    assert statuses == [Status.CHANGED], text
    folder = path.parent / "backups" / "lab"
    (made,) = archive.backups(folder)
    assert (oct(folder.stat().st_mode & 0o777), oct(made.stat().st_mode & 0o777)) == (
        "0o700", "0o600")
    assert TOKEN.encode() not in made.read_bytes()
    no_leftovers(vm, text)
    print(f"[backup] backup in {time.monotonic() - t0:.0f}s")

    # The datastore damaged, the token changed: restore puts both back.
    py(vm, "import sqlite3; db = sqlite3.connect('/var/lib/rancher/k3s/server/db/state.db');"
           " db.execute('DELETE FROM kine WHERE id > 7'); db.commit()")
    root(vm, "printf changed >/etc/rancher/k3s/cluster-token")
    assert py(vm, COUNT).split() == ["ok", "7"]
    before = root(vm, "systemctl show -p ExecMainStartTimestampMonotonic k3s")
    t1 = time.monotonic()
    text, statuses = task(path, "restore")
    assert statuses == [Status.CHANGED], text
    print(f"[backup] restore in {time.monotonic() - t1:.0f}s")
    assert py(vm, COUNT).split() == ["ok", "300"]
    assert root(vm, "cat /etc/rancher/k3s/cluster-token") == TOKEN
    assert root(vm, "cat /var/lib/rancher/k3s/server/token") == SERVER_TOKEN
    assert root(vm, "stat -c '%a %U' /etc/rancher/k3s/cluster-token"
                    " /var/lib/rancher/k3s/server/token /etc/rancher/k3s/config.yaml"
                    f" {DB}/state.db").splitlines() == ["600 root"] * 4
    assert root(vm, "systemctl is-active k3s").strip() == "active"
    assert root(vm, "systemctl show -p ExecMainStartTimestampMonotonic k3s") != before
    # The damaged datastore was kept aside, not deleted.
    (aside,) = root(vm, "ls -d /var/lib/rancher/k3s/server/pre-restore-*").split()
    assert root(vm, f"stat -c %a {aside}").strip() == "700"
    assert root(vm, f"ls {aside}/db").split()[:1] == ["state.db"]
    no_leftovers(vm, text)


def test_2_the_etcd_path_through_the_standin(lab: tuple[LabVm, Path]) -> None:
    vm, path = lab
    root(vm, f"mkdir -p {DB}/etcd/member && printf 'revision 42\\n'"
             f" >{DB}/etcd/member/standin-state")
    text, statuses = task(path, "create")
    assert statuses == [Status.CHANGED], text
    assert "etcd snapshot (k3s etcd-snapshot save)" in text
    root(vm, f"printf 'revision 43\\n' >{DB}/etcd/member/standin-state")
    text, statuses = task(path, "restore")
    assert statuses == [Status.CHANGED], text
    assert root(vm, f"cat {DB}/etcd/member/standin-state") == "revision 42\n"
    assert root(vm, f"cat {DB}/etcd-old-*/member/standin-state") == "revision 43\n"
    log = root(vm, "cat /var/log/k3s-standin.log")
    assert '"etcd-snapshot", "save", "--name", "stack-backup", "--dir"' in log
    assert '"server", "--cluster-reset", "--cluster-reset-restore-path=/var/tmp/stack-restore.' \
           in log
    assert root(vm, "systemctl is-active k3s").strip() == "active"
    no_leftovers(vm, text)
