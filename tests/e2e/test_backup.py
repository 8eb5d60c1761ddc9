"""backup.create and backup.restore on the lab VM, over real SSH.

K3s is the STAND-IN ``tests/standins/k3s`` (installed for real by k3s.install's air-gap
path, as in test_k3s.py: unit, token, config), and its SQLite datastore is a REAL
database this test writes into ``<data_dir>/server/db/state.db`` with python3 on the VM.
Real: SQLite's online backup API on the VM, tar, the stream over SSH into the real age,
the decryption with the operator's identity, the SFTP upload, systemd stopping and
starting K3s, the Ready wait. Backup, then rows deleted and the token changed, then
restore: the rows are back and ``PRAGMA integrity_check`` says ok. Then onto a fresh host
(``inv k3s.uninstall``, ``k3s.install``, ``inv backup.restore --file``), and the etcd path
through the stand-in's ``etcd-snapshot save`` and ``--cluster-reset``.
"""

from __future__ import annotations

import io
import shlex
import subprocess
import sys
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
REPO = Path(__file__).resolve().parents[2]
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
COUNT = ("python3 -c 'import sqlite3; db = sqlite3.connect(\"file:" + DB + "/state.db?mode=ro\","
         " uri=True); print(db.execute(\"PRAGMA integrity_check\").fetchone()[0],"
         " db.execute(\"SELECT count(*) FROM kine\").fetchone()[0])'")


def root(vm: LabVm, command: str) -> str:
    return vm.run(f"sudo -n sh -c {shlex.quote(command)}").stdout


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
    t0 = time.monotonic()
    binary, sha = standin(tmp)
    path = inventory(vm, tmp, binary, sha, "v1.33.3+k3s1")
    if vm.run("test -e /usr/local/bin/k3s", check=False).rc == 0:
        # test_k3s ran first and left a newer K3s (its upgrade test): start from none.
        r = inv("k3s.uninstall", "-i", str(path), "--confirm", "lab")
        assert r.returncode == 0, r.stdout + r.stderr
    ok, text, _ = install(path)
    assert ok, text
    print(f"[backup] k3s.install (stand-in) in {time.monotonic() - t0:.0f}s")
    pub = new_key(tmp / "operator.agekey")
    data = yaml.safe_load(path.read_text())
    data["backup"] = {"dir": str(tmp / "backups"), "keep": 3}
    data["secrets"] = {"age_recipients": [pub], "age_key_file": str(tmp / "operator.agekey")}
    path.write_text(yaml.safe_dump(data))
    assert root(vm, f"mkdir -p {DB} && printf %s {SERVER_TOKEN}"
                    " >/var/lib/rancher/k3s/server/token && chmod 0600"
                    f" /var/lib/rancher/k3s/server/token && python3 -c {shlex.quote(ROWS)}"
                    f" && {COUNT}").split() == ["ok", "300"]
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


def no_leftovers(text: str, seen: str) -> None:
    """``seen``: what LEFTOVERS printed on the host."""
    _, marker, host_side = seen.partition("@@ /var/tmp: ")
    assert (marker, host_side[:2]) == ("@@ /var/tmp: ", "0\n"), seen[-300:]
    for canary in (TOKEN, SERVER_TOKEN):
        assert canary not in text and canary not in host_side


# Temp files of ours in /var/tmp, every process's arguments, what the stand-in k3s ran.
LEFTOVERS = ("echo \"@@ /var/tmp: $(ls /var/tmp | grep -c '^stack-')\"; ps -eo args;"
             " cat /var/log/k3s-standin.log")


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
    print(f"[backup] backup in {time.monotonic() - t0:.0f}s")

    # The datastore damaged, the token changed: restore puts both back.
    damage = ("python3 -c \"import sqlite3; db = sqlite3.connect('" + DB + "/state.db');"
              " db.execute('DELETE FROM kine WHERE id > 7'); db.commit()\""
              " && printf changed >/etc/rancher/k3s/cluster-token")
    seen = root(vm, f"{LEFTOVERS}; {damage}; {COUNT};"
                    " systemctl show -p ExecMainStartTimestampMonotonic k3s")
    no_leftovers(text, seen)
    *_, count, before = seen.splitlines()
    assert count == "ok 7"
    t1 = time.monotonic()
    text, statuses = task(path, "restore")
    assert statuses == [Status.CHANGED], text
    print(f"[backup] restore in {time.monotonic() - t1:.0f}s")
    seen = root(vm, f"{COUNT}; cat /etc/rancher/k3s/cluster-token; echo;"
                    " cat /var/lib/rancher/k3s/server/token; echo; stat -c '%a %U'"
                    " /etc/rancher/k3s/cluster-token /var/lib/rancher/k3s/server/token"
                    f" /etc/rancher/k3s/config.yaml {DB}/state.db; systemctl is-active k3s;"
                    " systemctl show -p ExecMainStartTimestampMonotonic k3s;"
                    # the damaged datastore was kept aside, not deleted
                    " stat -c '%a %n' /var/lib/rancher/k3s/server/pre-restore-*;"
                    " ls /var/lib/rancher/k3s/server/pre-restore-*/db | head -n 1;"
                    f" {LEFTOVERS}")
    lines = seen.splitlines()
    assert lines[:8] == ["ok 300", TOKEN, SERVER_TOKEN, *["600 root"] * 4, "active"]
    assert lines[8].startswith("ExecMainStartTimestampMonotonic=") and lines[8] != before
    mode, aside = lines[9].split()
    assert (mode, aside.startswith("/var/lib/rancher/k3s/server/pre-restore-2")) == (
        "700", True)
    assert lines[10] == "state.db"
    no_leftovers(text, seen)


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=900,
                          check=False)


def test_2_onto_a_fresh_host_through_the_cli(lab: tuple[LabVm, Path]) -> None:
    """K3s and all its data removed (k3s.uninstall), K3s installed afresh (no datastore),
    then `inv backup.restore --file` of the SQLite backup: the rows are back."""
    vm, path = lab
    (first,) = archive.backups(path.parent / "backups" / "lab")
    t0 = time.monotonic()
    r = inv("k3s.uninstall", "-i", str(path), "--confirm", "lab")
    assert r.returncode == 0, r.stdout + r.stderr
    assert root(vm, f"ls -d /etc/rancher/k3s {DB} 2>/dev/null; true") == ""
    ok, text, _ = install(path)
    assert ok, text
    assert root(vm, f"ls {DB} 2>/dev/null; true") == ""  # a fresh K3s: no datastore yet
    r = inv("backup.restore", "-i", str(path), "--file", str(first), "--confirm", "lab")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"changed      restore: {first.name}" in r.stdout, r.stdout
    print(f"[backup] uninstall, install, restore in {time.monotonic() - t0:.0f}s")
    seen = root(vm, f"{COUNT}; cat /var/lib/rancher/k3s/server/token; echo; systemctl"
                    f" is-active k3s; {LEFTOVERS}")
    assert seen.splitlines()[:3] == ["ok 300", SERVER_TOKEN, "active"]
    no_leftovers(r.stdout + r.stderr, seen)


def test_3_the_etcd_path_through_the_standin(lab: tuple[LabVm, Path]) -> None:
    vm, path = lab
    root(vm, f"mkdir -p {DB}/etcd/member && printf 'revision 42\\n'"
             f" >{DB}/etcd/member/standin-state")
    text, statuses = task(path, "create")
    assert statuses == [Status.CHANGED], text
    assert "etcd snapshot (k3s etcd-snapshot save)" in text
    root(vm, f"printf 'revision 43\\n' >{DB}/etcd/member/standin-state")
    text, statuses = task(path, "restore")
    assert statuses == [Status.CHANGED], text
    seen = root(vm, f"cat {DB}/etcd/member/standin-state {DB}/etcd-old-*/member/standin-state;"
                    f" systemctl is-active k3s; {LEFTOVERS}")
    assert seen.splitlines()[:3] == ["revision 42", "revision 43", "active"]
    assert '"etcd-snapshot", "save", "--name", "stack-backup", "--dir"' in seen
    assert '"server", "--cluster-reset", "--cluster-reset-restore-path=/var/tmp/stack-restore.' \
           in seen
    no_leftovers(text, seen)
