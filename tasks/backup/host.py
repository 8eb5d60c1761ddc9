"""The server's side of a backup and a restore: what it has (facts), what runs there.

Everything here is pure: facts in, shell text out (tested as literal scripts). The
backup script writes only a tar on stdout (streamed to the operator, where age encrypts
it); its work files live in a 0700 folder under /var/tmp removed on every exit path.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, Facts, Raw, lines
from tasks.engine.shell import progress, q, script
from tasks.k3s.binary import BINARY, INSTALLED, Installed, parse_version
from tasks.k3s.node import UNIT_DIR
from tasks.stack.components.k3s import AUDIT_POLICY, CONFIG, PSA, TOKEN_FILE

Datastore = Literal["sqlite", "etcd"]
FORMAT = 1  # of the archive (manifest.json "format")
SNAPSHOT_NAME = "stack-backup"
WORK = "/var/tmp"  # noqa: S108 - mktemp -d makes a private 0700 folder there
TOOLS = ("python3", "sqlite3")  # what can run SQLite's backup API on the host


@dataclass(frozen=True)
class Kept:
    """A file a backup carries and a restore puts back (root-owned, with ``mode``)."""

    path: str
    mode: str
    required: bool = True


@dataclass(frozen=True)
class Layout:
    """Where K3s keeps things on a server (tests point it at a scratch folder)."""

    data_dir: str
    files: tuple[Kept, ...]
    binary: str = BINARY
    work: str = WORK

    @property
    def db(self) -> str:
        return f"{self.data_dir.rstrip('/')}/server/db"

    @property
    def state_db(self) -> str:
        return f"{self.db}/state.db"


#: The node's password, which the datastore holds a hash of (Secret
#: kube-system/<node>.node-password.k3s): a fresh host makes a new one, which K3s rejects
#: for a node of that name, so a restore puts the old one back.
NODE_PASSWORD = "/etc/rancher/node/password"  # noqa: S105 - a path


def layout(data_dir: str) -> Layout:
    """What a server of ours holds: our config and policies, both tokens, our unit, the
    node password."""
    server_token = f"{data_dir.rstrip('/')}/server/token"
    return Layout(data_dir, (
        Kept(CONFIG, "0600"), Kept(PSA, "0600"), Kept(AUDIT_POLICY, "0600"),
        Kept(TOKEN_FILE, "0600"), Kept(server_token, "0600", required=False),
        Kept(NODE_PASSWORD, "0600", required=False),
        Kept(f"{UNIT_DIR}/k3s.service", "0644")))


@dataclass(frozen=True)
class HostState:
    version: str | None  # the installed K3s, None when there is none
    datastore: Datastore | None  # None: K3s never started a server here
    db_bytes: int  # size of state.db (SQLite)
    tools: tuple[str, ...]  # of TOOLS, those on the host
    present: tuple[str, ...]  # of the layout's files, those that exist
    active: bool  # the k3s service runs


def _datastore(raw: Raw) -> tuple[Datastore | None, int]:
    words = raw.stdout.split()
    if words[:1] == ["etcd"]:
        return "etcd", 0
    if words[:1] == ["sqlite"] and len(words) > 1 and words[1].isdigit():
        return "sqlite", int(words[1])
    return None, 0


def facts(lay: Layout) -> list[Fact[Any]]:
    db = q(lay.db)
    return [
        INSTALLED if lay.binary == BINARY else Fact(
            "k3s:binary", f"uname -m; {q(lay.binary)} --version 2>/dev/null | head -n 1",
            INSTALLED.parse),
        Fact("backup:datastore", f"if [ -d {db}/etcd ]; then echo etcd; elif [ -f"
             f" {db}/state.db ]; then echo sqlite $(stat -c %s {db}/state.db); else echo"
             " none; fi", _datastore),
        Fact("backup:tools", "for t in " + " ".join(TOOLS) + "; do command -v \"$t\""
             " >/dev/null 2>&1 && echo \"$t\"; done; true", lines),
        Fact("backup:present", "for p in " + " ".join(q(k.path) for k in lay.files)
             + "; do [ -f \"$p\" ] && echo \"$p\"; done; true", lines),
        Fact("backup:active", "systemctl is-active k3s 2>/dev/null; true",
             lambda raw: raw.stdout.strip() == "active"),
    ]


def state(lay: Layout, found: Facts) -> HostState:
    f = facts(lay)
    installed: Installed = found[f[0]]
    kind, size = found[f[1]]
    return HostState(installed.version, kind, size, tuple(found[f[2]]), tuple(found[f[3]]),
                     found[f[4]])


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` at the top of the archive: what it is, checked before a restore."""

    cluster: str
    host: str
    k3s_version: str
    datastore: Datastore
    created: str  # the UTC time of the archive's name
    files: tuple[Kept, ...] = field(default_factory=tuple)
    format: int = FORMAT

    def to_json(self) -> str:
        data = {"format": self.format, "cluster": self.cluster, "host": self.host,
                "k3s_version": self.k3s_version, "datastore": self.datastore,
                "created": self.created,
                "files": [{"path": k.path, "mode": k.mode} for k in self.files]}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> Manifest:
        try:
            data = json.loads(text)
            if data["format"] != FORMAT or data["datastore"] not in ("sqlite", "etcd"):
                raise ValueError(f"format {data['format']}, datastore {data['datastore']}")
            return cls(str(data["cluster"]), str(data["host"]), str(data["k3s_version"]),
                       data["datastore"], str(data["created"]),
                       tuple(Kept(str(f["path"]), str(f["mode"])) for f in data["files"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{source}: not a backup of this tool (manifest.json: {exc})"
                            ) from None


def copy_tool(st: HostState, host: str) -> str:
    """What runs SQLite's online backup API on the host: python3, else sqlite3."""
    for tool in TOOLS:
        if tool in st.tools:
            return tool
    raise UserError(f"{host}: neither python3 nor sqlite3 is installed, and one of them"
                    " must run SQLite's backup API there (apt-get install sqlite3); nothing"
                    " was changed")


# python3's sqlite3 module: Connection.backup() is SQLite's online backup API (a
# consistent copy while K3s writes), then PRAGMA integrity_check on the copy.
_PY_COPY = """\
import sqlite3, sys
src = sqlite3.connect(sys.argv[1], timeout=60)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
src.close()
rows = dst.execute("PRAGMA integrity_check").fetchall()
dst.close()
if rows != [("ok",)]:
    sys.exit("integrity_check: " + "; ".join(str(r[0]) for r in rows[:3]))
"""
_PY_CHECK = """\
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
rows = db.execute("PRAGMA integrity_check").fetchall()
db.close()
if rows != [("ok",)]:
    sys.exit("integrity_check: " + "; ".join(str(r[0]) for r in rows[:3]))
"""


def sqlite_copy(tool: str, source: str, dest: str) -> str:
    """Shell: a consistent copy of ``source`` at ``dest`` (``dest`` a quoted word or a
    "$var/..." expression), checked."""
    if tool == "python3":
        return f"python3 - {q(source)} {dest} {heredoc_text(_PY_COPY)}"
    return (f"sqlite3 {q(source)} '.timeout 60000' \".backup '{dest.strip(chr(34))}'\"\n"
            + sqlite_check(tool, dest))


def sqlite_check(tool: str, path: str) -> str:
    """Shell failing with SQLite's words unless ``PRAGMA integrity_check`` says ok."""
    if tool == "python3":
        return f"python3 - {path} {heredoc_text(_PY_CHECK)}"
    return (f"r=$(sqlite3 {path} 'PRAGMA integrity_check;')\n"
            "[ \"$r\" = ok ] || { echo \"integrity_check: $r\" >&2; exit 1; }\n")


def heredoc_text(text: str) -> str:
    """A here-document carrying plain (non-secret, quote-free) program text."""
    return f"<<'STACK_PY'\n{text}STACK_PY\n"


def _begin(lay: Layout, kind: str, cleanup: str = "") -> list[str]:
    return ["umask 077",
            f"tmp=$(mktemp -d {q(lay.work)}/stack-{kind}.XXXXXX)",
            f"trap 'rm -rf \"$tmp\"{cleanup}' EXIT",
            "trap 'exit 1' INT TERM HUP"]


def backup_script(lay: Layout, st: HostState, manifest: Manifest) -> str:
    """Shell writing the backup as a tar on stdout (everything else on stderr)."""
    body = [*_begin(lay, "backup"), 'mkdir "$tmp/b" "$tmp/b/datastore" "$tmp/b/files"']
    if manifest.datastore == "sqlite":
        tool = copy_tool(st, manifest.host)
        body += [progress(f"copying {lay.state_db} with SQLite's backup API ({tool}),"
                          " then PRAGMA integrity_check").rstrip(),
                 sqlite_copy(tool, lay.state_db, '"$tmp/b/datastore/state.db"').rstrip()]
    else:
        body += [progress("k3s etcd-snapshot save").rstrip(),
                 'mkdir "$tmp/snap"',
                 f"{q(lay.binary)} etcd-snapshot save --name {SNAPSHOT_NAME} --dir"
                 ' "$tmp/snap" >&2',
                 f'set -- "$tmp/snap"/{SNAPSHOT_NAME}-*',
                 '[ -f "$1" ] || { echo "k3s etcd-snapshot save wrote no snapshot" >&2;'
                 " exit 1; }",
                 'mv "$1" "$tmp/b/datastore/etcd-snapshot"']
    for kept in manifest.files:
        folder = kept.path.rsplit("/", 1)[0]
        body.append(f'mkdir -p "$tmp/b/files"{q(folder)} && cp {q(kept.path)}'
                    f' "$tmp/b/files"{q(kept.path)}')
    data = base64.encodebytes(manifest.to_json().encode()).decode()
    body += [f"base64 -d >\"$tmp/b/manifest.json\" <<'STACK_MANIFEST'\n{data}STACK_MANIFEST",
             'tar -C "$tmp/b" -cf - manifest.json datastore files']
    return script(body)


def backup_manifest(lay: Layout, st: HostState, *, cluster: str, host: str,
                    created: str) -> Manifest:
    """What this server's backup will hold; refuses (one line) what cannot be backed up."""
    if st.version is None:
        raise UserError(f"{host}: K3s is not installed: nothing to back up")
    if st.datastore is None:
        raise UserError(f"{host}: no K3s datastore in {lay.db} (neither state.db nor"
                        " etcd): nothing to back up")
    missing = [k.path for k in lay.files if k.required and k.path not in st.present]
    if missing:
        raise UserError(f"{host}: {', '.join(missing)} missing: run inv k3s.install first;"
                        " nothing was backed up")
    files = tuple(k for k in lay.files if k.path in st.present)
    return Manifest(cluster, host, st.version, st.datastore, created, files)


def restore_refusal(lay: Layout, backup: Manifest, st: HostState, *, cluster: str,
                    host: str) -> str | None:
    """Why this backup cannot go onto this host (one line), or None."""
    if backup.cluster != cluster:
        return (f"the backup is of cluster {backup.cluster!r}, the inventory's is"
                f" {cluster!r} (k3s.cluster_name): refused")
    if st.version is None:
        return (f"{host}: K3s is not installed: run inv k3s.install first (versions.k3s"
                f" {backup.k3s_version} or newer), then restore")
    have, was = parse_version(st.version), parse_version(backup.k3s_version)
    if have is None or was is None or was > have:
        return (f"the backup was taken with K3s {backup.k3s_version}, newer than"
                f" {st.version} on {host}: upgrade K3s first (versions.k3s), then restore")
    missing = [k.path for k in lay.files if k.required and k.path not in
               {f.path for f in backup.files}]
    if missing:
        return f"the backup lacks {', '.join(missing)}: refused"
    if st.datastore is not None and st.datastore != backup.datastore:
        return (f"the backup holds a{'n etcd' if backup.datastore == 'etcd' else ' SQLite'}"
                f" datastore, {host} runs {st.datastore}: refused")
    return None


def restored(lay: Layout, backup: Manifest) -> list[Kept]:
    """The files a restore puts back: those of our layout the backup holds, with the
    layout's modes (never a path or mode read from the archive)."""
    held = {k.path for k in backup.files}
    return [k for k in lay.files if k.path in held]


def restore_script(lay: Layout, st: HostState, backup: Manifest, *, host: str, upload: str,
                   sha256: str, stamp: str, start: str) -> str:
    """Shell putting the uploaded archive back: checked, K3s stopped, datastore and files
    in place, K3s started (``start``: k3s.install's start-and-wait-Ready)."""
    server = f"{lay.data_dir.rstrip('/')}/server"
    aside = f"{server}/pre-restore-{stamp}"
    body = [
        *_begin(lay, "restore", f'; rm -f {q(upload)} {q(upload + ".part")}'),
        f"[ \"$(sha256sum {q(upload)} | cut -d' ' -f1)\" = {sha256} ] || {{ echo"
        " \"the uploaded backup is not what was sent (sha256)\" >&2; exit 1; }",
        'mkdir "$tmp/b"',
        f'tar -C "$tmp/b" --no-same-owner -xf {q(upload)}',
        f"rm -f {q(upload)}",
    ]
    if backup.datastore == "sqlite":
        body += [progress("PRAGMA integrity_check of the backup's state.db").rstrip(),
                 sqlite_check(copy_tool(st, host), '"$tmp/b/datastore/state.db"').rstrip()]
    body += [progress("stopping k3s").rstrip(), "systemctl stop k3s 2>/dev/null || true",
             f"mkdir -p {q(aside)} && chmod 0700 {q(aside)}"]
    # The live datastore (SQLite) and the certificates and keys K3s writes from the
    # datastore's bootstrap data are moved aside, kept, never deleted.
    moved = ("db", "tls", "cred") if backup.datastore == "sqlite" else ("tls", "cred")
    body.append(f"for d in {' '.join(moved)}; do if [ -e {q(server)}/\"$d\" ]; then mv"
                f" {q(server)}/\"$d\" {q(aside)}/; fi; done")
    for kept in restored(lay, backup):
        body.append(f'install -D -o root -g root -m {kept.mode} "$tmp/b/files"{q(kept.path)}'
                    f" {q(kept.path)}")
    body.append("systemctl daemon-reload")
    if backup.datastore == "sqlite":
        body += [f"mkdir -p {q(lay.db)} && chmod 0700 {q(lay.db)}",
                 'install -o root -g root -m 0600 "$tmp/b/datastore/state.db"'
                 f" {q(lay.state_db)}"]
    else:
        body += [progress("k3s server --cluster-reset from the snapshot").rstrip(),
                 f"{q(lay.binary)} server --cluster-reset"
                 ' --cluster-reset-restore-path="$tmp/b/datastore/etcd-snapshot" >&2']
    body.append(start.rstrip())
    return script(body)


def summary(manifest: Manifest, lay: Layout, st: HostState) -> list[str]:
    """What a backup takes, for plan mode and the log."""
    if manifest.datastore == "sqlite":
        what = (f"SQLite datastore {lay.state_db} ({mib(st.db_bytes)}, copied with SQLite's"
                f" backup API by {copy_tool(st, manifest.host)}, integrity_check on the copy)")
    else:
        what = "etcd snapshot (k3s etcd-snapshot save)"
    return [what, "files: " + ", ".join(k.path for k in manifest.files)]


def mib(size: int) -> str:
    """A size for the operator: KiB below 1 MiB."""
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size / 1024:.1f} KiB"
