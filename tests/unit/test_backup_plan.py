"""backup.create / backup.restore planned: facts in, literal scripts out; names,
retention and every refusal, each with its one line."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasks.backup import archive
from tasks.backup.host import (
    HostState,
    Kept,
    Layout,
    Manifest,
    backup_manifest,
    backup_script,
    copy_tool,
    facts,
    layout,
    mib,
    restore_refusal,
    restore_script,
    state,
)
from tasks.engine.errors import UserError
from tasks.engine.facts import Facts, Raw

LAY = layout("/var/lib/rancher/k3s")
SMALL = Layout("/data", (Kept("/etc/k3s/config.yaml", "0600"),
                         Kept("/data/server/token", "0600", required=False)))
ALL = tuple(k.path for k in LAY.files)


def host(version: str | None = "v1.33.3+k3s1", datastore: str | None = "sqlite",
         tools: tuple[str, ...] = ("python3",), present: tuple[str, ...] = ALL) -> HostState:
    return HostState(version, datastore, 3 << 20, tools, present, True)  # type: ignore[arg-type]


def manifest(**kw: object) -> Manifest:
    fields: dict[str, object] = {"cluster": "vps", "host": "vps1",
                                 "k3s_version": "v1.33.3+k3s1", "datastore": "sqlite",
                                 "created": "20261202T071500Z", "files": LAY.files}
    fields.update(kw)
    return Manifest(**fields)  # type: ignore[arg-type]


def test_what_a_server_backup_holds() -> None:
    assert [(k.path, k.mode, k.required) for k in LAY.files] == [
        ("/etc/rancher/k3s/config.yaml", "0600", True),
        ("/etc/rancher/k3s/psa.yaml", "0600", True),
        ("/etc/rancher/k3s/audit-policy.yaml", "0600", True),
        ("/etc/rancher/k3s/cluster-token", "0600", True),
        ("/var/lib/rancher/k3s/server/token", "0600", False),
        ("/etc/rancher/node/password", "0600", False),
        ("/etc/systemd/system/k3s.service", "0644", True),
    ]
    assert LAY.state_db == "/var/lib/rancher/k3s/server/db/state.db"


def test_facts_as_the_host_prints_them() -> None:
    keys = [f.key for f in facts(LAY)]
    assert keys == ["k3s:binary", "backup:datastore", "backup:tools", "backup:present",
                    "backup:active"]
    raw = dict(zip(keys, [
        Raw("x86_64\nk3s version v1.33.3+k3s1 (abc)\n" + "c" * 64 + "  /usr/local/bin/k3s\n", 0),
        Raw("sqlite 1048576\n", 0), Raw("python3\n", 0),
        Raw("/etc/rancher/k3s/config.yaml\n/etc/rancher/k3s/cluster-token\n", 0),
        Raw("active\n", 0)], strict=True))
    assert state(LAY, Facts(raw)) == HostState(
        "v1.33.3+k3s1", "sqlite", 1048576, ("python3",),
        ("/etc/rancher/k3s/config.yaml", "/etc/rancher/k3s/cluster-token"), True)
    raw["backup:datastore"] = Raw("etcd\n", 0)
    raw["k3s:binary"] = Raw("x86_64\n", 0)
    raw["backup:active"] = Raw("inactive\n", 3)
    st = state(LAY, Facts(raw))
    assert (st.version, st.datastore, st.db_bytes, st.active) == (None, "etcd", 0, False)
    raw["backup:datastore"] = Raw("none\n", 0)
    assert state(LAY, Facts(raw)).datastore is None


def _manifest_b64(m: Manifest) -> str:
    return base64.encodebytes(m.to_json().encode()).decode()


def test_the_sqlite_backup_script_with_python3() -> None:
    st = HostState("v1.33.3+k3s1", "sqlite", 4096, ("python3", "sqlite3"),
                   ("/etc/k3s/config.yaml",), True)
    m = backup_manifest(SMALL, st, cluster="vps", host="vps1", created="20261202T071500Z")
    assert m.files == (Kept("/etc/k3s/config.yaml", "0600"),)  # the token is optional
    assert backup_script(SMALL, st, m) == f"""\
set -eu
umask 077
tmp=$(mktemp -d /var/tmp/stack-backup.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
mkdir "$tmp/b" "$tmp/b/datastore" "$tmp/b/files"
printf '%s\\n' '@@stack-progress@@ copying /data/server/db/state.db with SQLite'"'"'s backup\
 API (python3), then PRAGMA integrity_check' >&2
python3 - /data/server/db/state.db "$tmp/b/datastore/state.db" <<'STACK_PY'
import sqlite3, sys
src = sqlite3.connect(sys.argv[1], timeout=60)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
src.close()
rows = dst.execute("PRAGMA integrity_check").fetchall()
dst.close()
if rows != [("ok",)]:
    sys.exit("integrity_check: " + "; ".join(str(r[0]) for r in rows[:3]))
STACK_PY
mkdir -p "$tmp/b/files"/etc/k3s && cp /etc/k3s/config.yaml "$tmp/b/files"/etc/k3s/config.yaml
base64 -d >"$tmp/b/manifest.json" <<'STACK_MANIFEST'
{_manifest_b64(m)}STACK_MANIFEST
tar -C "$tmp/b" -cf - manifest.json datastore files
"""
    assert json.loads(m.to_json()) == {
        "format": 1, "cluster": "vps", "host": "vps1", "k3s_version": "v1.33.3+k3s1",
        "datastore": "sqlite", "created": "20261202T071500Z",
        "files": [{"path": "/etc/k3s/config.yaml", "mode": "0600"}]}


def test_the_sqlite3_cli_when_there_is_no_python3() -> None:
    st = HostState("v1.33.3+k3s1", "sqlite", 4096, ("sqlite3",), ("/etc/k3s/config.yaml",),
                   True)
    m = backup_manifest(SMALL, st, cluster="vps", host="vps1", created="20261202T071500Z")
    text = backup_script(SMALL, st, m)
    assert ("sqlite3 /data/server/db/state.db '.timeout 60000'"
            " \".backup '$tmp/b/datastore/state.db'\"\n"
            "r=$(sqlite3 \"$tmp/b/datastore/state.db\" 'PRAGMA integrity_check;')\n"
            "[ \"$r\" = ok ] || { echo \"integrity_check: $r\" >&2; exit 1; }\n") in text
    assert "python3" not in text


def test_the_etcd_backup_script_takes_a_snapshot() -> None:
    st = HostState("v1.33.3+k3s1", "etcd", 0, (), ("/etc/k3s/config.yaml",), True)
    m = backup_manifest(SMALL, st, cluster="vps", host="vps1", created="20261202T071500Z")
    assert m.datastore == "etcd"
    text = backup_script(SMALL, st, m)
    assert """\
mkdir "$tmp/b" "$tmp/b/datastore" "$tmp/b/files"
printf '%s\\n' '@@stack-progress@@ k3s etcd-snapshot save' >&2
mkdir "$tmp/snap"
/usr/local/bin/k3s etcd-snapshot save --name stack-backup --dir "$tmp/snap" >&2
set -- "$tmp/snap"/stack-backup-*
[ -f "$1" ] || { echo "k3s etcd-snapshot save wrote no snapshot" >&2; exit 1; }
mv "$1" "$tmp/b/datastore/etcd-snapshot"
mkdir -p "$tmp/b/files"/etc/k3s""" in text
    assert "sqlite" not in text.replace('"datastore": "sqlite"', "")


@pytest.mark.parametrize(("st", "message"), [
    (host(version=None), "vps1: K3s is not installed: nothing to back up"),
    (host(datastore=None), "vps1: no K3s datastore in /var/lib/rancher/k3s/server/db"
                           " (neither state.db nor etcd): nothing to back up"),
    (host(present=ALL[1:]), "vps1: /etc/rancher/k3s/config.yaml missing: run inv k3s.install"
                            " first; nothing was backed up"),
])
def test_backup_refusals(st: HostState, message: str) -> None:
    with pytest.raises(UserError) as info:
        backup_manifest(LAY, st, cluster="vps", host="vps1", created="x")
    assert info.value.lines == [message]


def test_no_tool_for_the_sqlite_backup_api_is_refused() -> None:
    with pytest.raises(UserError) as info:
        copy_tool(host(tools=()), "vps1")
    assert info.value.lines == [
        "vps1: neither python3 nor sqlite3 is installed, and one of them must run SQLite's"
        " backup API there (apt-get install sqlite3); nothing was changed"]
    assert copy_tool(host(tools=("sqlite3", "python3")), "vps1") == "python3"


def test_the_restore_script() -> None:
    m = manifest(files=(*LAY.files[:4], LAY.files[6]))  # no server/token, no node password
    text = restore_script(LAY, host(), m, host="vps1", upload="/var/tmp/up.tar",
                          sha256="ab" * 32, stamp="20261202T080000Z", start="START\n")
    assert text == """\
set -eu
umask 077
tmp=$(mktemp -d /var/tmp/stack-restore.XXXXXX)
trap 'rm -rf "$tmp"; rm -f /var/tmp/up.tar /var/tmp/up.tar.part' EXIT
trap 'exit 1' INT TERM HUP
[ "$(sha256sum /var/tmp/up.tar | cut -d' ' -f1)" = \
abababababababababababababababababababababababababababababababab ] || { echo "the uploaded\
 backup is not what was sent (sha256)" >&2; exit 1; }
mkdir "$tmp/b"
tar -C "$tmp/b" --no-same-owner -xf /var/tmp/up.tar
rm -f /var/tmp/up.tar
printf '%s\\n' '@@stack-progress@@ PRAGMA integrity_check of the backup'"'"'s state.db' >&2
python3 - "$tmp/b/datastore/state.db" <<'STACK_PY'
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
rows = db.execute("PRAGMA integrity_check").fetchall()
db.close()
if rows != [("ok",)]:
    sys.exit("integrity_check: " + "; ".join(str(r[0]) for r in rows[:3]))
STACK_PY
printf '%s\\n' '@@stack-progress@@ stopping k3s' >&2
systemctl stop k3s 2>/dev/null || true
mkdir -p /var/lib/rancher/k3s/server/pre-restore-20261202T080000Z && chmod 0700\
 /var/lib/rancher/k3s/server/pre-restore-20261202T080000Z
for d in db tls cred; do if [ -e /var/lib/rancher/k3s/server/"$d" ]; then mv\
 /var/lib/rancher/k3s/server/"$d" /var/lib/rancher/k3s/server/pre-restore-20261202T080000Z/;\
 fi; done
install -D -o root -g root -m 0600 "$tmp/b/files"/etc/rancher/k3s/config.yaml\
 /etc/rancher/k3s/config.yaml
install -D -o root -g root -m 0600 "$tmp/b/files"/etc/rancher/k3s/psa.yaml\
 /etc/rancher/k3s/psa.yaml
install -D -o root -g root -m 0600 "$tmp/b/files"/etc/rancher/k3s/audit-policy.yaml\
 /etc/rancher/k3s/audit-policy.yaml
install -D -o root -g root -m 0600 "$tmp/b/files"/etc/rancher/k3s/cluster-token\
 /etc/rancher/k3s/cluster-token
install -D -o root -g root -m 0644 "$tmp/b/files"/etc/systemd/system/k3s.service\
 /etc/systemd/system/k3s.service
systemctl daemon-reload
mkdir -p /var/lib/rancher/k3s/server/db && chmod 0700 /var/lib/rancher/k3s/server/db
install -o root -g root -m 0600 "$tmp/b/datastore/state.db"\
 /var/lib/rancher/k3s/server/db/state.db
START
"""


def test_an_etcd_restore_resets_the_cluster_from_the_snapshot() -> None:
    text = restore_script(LAY, host(datastore="etcd", tools=()), manifest(datastore="etcd"),
                          host="vps1", upload="/var/tmp/up.tar", sha256="ab" * 32,
                          stamp="20261202T080000Z", start="START\n")
    assert text.endswith("""\
systemctl daemon-reload
printf '%s\\n' '@@stack-progress@@ k3s server --cluster-reset from the snapshot' >&2
/usr/local/bin/k3s server --cluster-reset\
 --cluster-reset-restore-path="$tmp/b/datastore/etcd-snapshot" >&2
START
""")
    assert "for d in tls cred; do" in text and "integrity_check" not in text


def test_a_restore_takes_paths_and_modes_from_our_layout_never_from_the_archive() -> None:
    forged = manifest(files=(*LAY.files[:4], LAY.files[6], Kept("/etc/sudoers", "4777"),
                             Kept("/etc/rancher/k3s/config.yaml", "0777 /x")))
    text = restore_script(LAY, host(), forged, host="vps1", upload="/u", sha256="ab" * 32,
                          stamp="s", start="")
    assert "sudoers" not in text and "0777" not in text
    assert text.count("install -D ") == 5


@pytest.mark.parametrize(("backup", "st", "message"), [
    (manifest(cluster="other"), host(),
     "the backup is of cluster 'other', the inventory's is 'vps' (k3s.cluster_name): refused"),
    (manifest(k3s_version="v1.33.4+k3s1"), host(),
     "the backup was taken with K3s v1.33.4+k3s1, newer than v1.33.3+k3s1 on vps1: upgrade"
     " K3s first (versions.k3s), then restore"),
    (manifest(), host(version=None),
     "vps1: K3s is not installed: run inv k3s.install first (versions.k3s v1.33.3+k3s1 or"
     " newer), then restore"),
    (manifest(datastore="etcd"), host(),
     "the backup holds an etcd datastore, vps1 runs sqlite: refused"),
    (manifest(), host(datastore="etcd"),
     "the backup holds a SQLite datastore, vps1 runs etcd: refused"),
    (manifest(files=LAY.files[1:]), host(),
     "the backup lacks /etc/rancher/k3s/config.yaml: refused"),
])
def test_restore_refusals(backup: Manifest, st: HostState, message: str) -> None:
    assert restore_refusal(LAY, backup, st, cluster="vps", host="vps1") == message


def test_restore_accepts_an_older_k3s_backup_and_a_fresh_datastore() -> None:
    assert restore_refusal(LAY, manifest(k3s_version="v1.33.2+k3s1"), host(datastore=None),
                           cluster="vps", host="vps1") is None


def test_a_manifest_round_trips_and_garbage_is_one_line() -> None:
    m = manifest(files=(Kept("/a", "0600"), Kept("/b", "0644")))
    assert Manifest.from_json(m.to_json(), "f") == m
    with pytest.raises(UserError) as info:
        Manifest.from_json('{"format": 2, "datastore": "sqlite"}', "b.tar.age")
    assert info.value.lines == ["b.tar.age: not a backup of this tool (manifest.json:"
                                " format 2, datastore sqlite)"]


def test_sizes_for_the_operator() -> None:
    assert [mib(n) for n in (0, 45056, (1 << 20) - 1, 3 << 20, 5 * (1 << 20) // 2)] == [
        "0.0 KiB", "44.0 KiB", "1024.0 KiB", "3.0 MiB", "2.5 MiB"]


def test_file_names_are_the_utc_time() -> None:
    assert archive.stamp(datetime(2026, 12, 2, 7, 15, 0, tzinfo=UTC)) == "20261202T071500Z"
    from datetime import timedelta, timezone

    paris = timezone(timedelta(hours=1))
    assert archive.stamp(datetime(2026, 12, 2, 8, 15, 0, tzinfo=paris)) == "20261202T071500Z"
    assert archive.folder(Path("/b"), "vps") == Path("/b/vps")


def test_retention_keeps_the_newest() -> None:
    names = ["20261201T000000Z.tar.age", "20261203T000000Z.tar.age", "notes.txt",
             "20261202T000000Z.tar.age", ".20261204T000000Z.tar.age.part"]
    assert archive.to_remove(names, 2) == ["20261201T000000Z.tar.age"]
    assert archive.to_remove(names, 1) == ["20261201T000000Z.tar.age",
                                           "20261202T000000Z.tar.age"]
    assert archive.to_remove(names, 7) == []


def test_backups_listed_oldest_first_others_ignored(tmp_path: Path) -> None:
    for name in ["20261203T000000Z.tar.age", "20261201T000000Z.tar.age", "x.tar.age",
                 ".20261204T000000Z.tar.age.part"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in archive.backups(tmp_path)] == [
        "20261201T000000Z.tar.age", "20261203T000000Z.tar.age"]
    assert archive.backups(tmp_path / "none") == []
