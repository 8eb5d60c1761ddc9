"""The logic of ``backup.create``, ``backup.restore`` and ``backup.list``.

Both read the first server's state in one round trip first (check, then act): plan mode
stops there and says what would be taken or put back. A backup is one more round trip
(the tar streamed into age); a restore is the upload and one round trip (checked,
K3s stopped, files in place, K3s started and its node Ready, as k3s.install waits).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tasks.backup import archive
from tasks.backup.host import (
    HostState,
    Layout,
    Manifest,
    backup_manifest,
    backup_script,
    facts,
    layout,
    mib,
    restore_refusal,
    restore_script,
    state,
    summary,
)
from tasks.cli import Session
from tasks.engine.errors import CommandFailed, UserError
from tasks.engine.report import Status, StepOutcome
from tasks.engine.shell import q
from tasks.engine.target import LocalTarget, OnOutput, SshTarget, gather
from tasks.k3s.binary import upload_path
from tasks.k3s.node import Node, host_files, nodes
from tasks.k3s.service import K3sService
from tasks.model.model import Host
from tasks.secrets import keys
from tasks.stack.context import context
from tasks.tooling.lookup import tool_path

Streaming = SshTarget | LocalTarget
STEP = "backup: K3s datastore, token, config"


@dataclass(frozen=True)
class Where:
    """The server a backup comes from (or goes to) and the operator's backup folder."""

    host: Host
    folder: Path
    lay: Layout


def where(session: Session) -> Where:
    inv = session.inventory.data
    host = session.hosts()[0] if session.only_host else inv.servers[0]
    if host.role != "server":
        raise UserError(f"{host.name} is an agent: backups come from (and go to) a server")
    base = Path(session.inventory.resolve(inv.backup.dir))
    return Where(host, archive.folder(base, inv.k3s.cluster_name), layout(inv.k3s.data_dir))


def read_state(target: Streaming, lay: Layout) -> HostState:
    return state(lay, gather(target, facts(lay)))


def _outcome(session: Session, host: str, step: str, status: Status, t0: float,
             details: list[str]) -> None:
    outcome = StepOutcome(host, step, status, time.monotonic() - t0, details,
                          step_id=step.split(":")[0])
    session.reporter.step(outcome)
    session.summary.outcomes.append(outcome)
    session.summary.seconds += outcome.seconds


# backup ---------------------------------------------------------------------------------

def take(target: Streaming, lay: Layout, st: HostState, manifest: Manifest, final: Path,
         *, age: str, recipients: list[str], on_output: OnOutput | None = None) -> int:
    """Stream the host's tar into age, written to ``final``; returns its size."""
    archive.private_folder(final.parent)
    body = backup_script(lay, st, manifest)
    with archive.encrypting(age, recipients, final) as enc:
        result = target.run(body, on_output=on_output, stdout_to=enc.write)
        if not result.ok:
            raise CommandFailed(f"{target.name}: taking the backup", result.rc, result.stderr)
    return final.stat().st_size


def prune(folder: Path, keep: int) -> list[str]:
    """Remove all but the ``keep`` newest backups; their names."""
    gone = archive.to_remove([p.name for p in archive.backups(folder)], keep)
    for name in gone:
        (folder / name).unlink()
    return gone


def create(session: Session) -> None:
    _counted(session, _create)


def restore(session: Session, file: str | None) -> None:
    _counted(session, lambda s: _restore(s, file))


def _counted(session: Session, work: Callable[[Session], None]) -> None:
    """Run ``work``; its SSH round trips (connecting included) go into the summary."""
    host = where(session).host
    try:
        work(session)
    finally:
        target = session.connections.get(host.name)
        if target is not None:
            session.summary.add_round_trips(host.name, target.round_trips)


def _create(session: Session) -> None:
    inv = session.inventory.data
    w = where(session)
    t0 = time.monotonic()
    age = str(tool_path("age", inv.versions.age))
    target = session.connect(w.host)
    st = read_state(target, w.lay)
    created = archive.stamp()
    manifest = backup_manifest(w.lay, st, cluster=inv.k3s.cluster_name, host=w.host.name,
                               created=created)
    final = w.folder / f"{created}{archive.SUFFIX}"
    keep = inv.backup.keep
    existing = [p.name for p in archive.backups(w.folder)]
    details = [*summary(manifest, w.lay, st),
               f"encrypted with age for {len(inv.secrets.age_recipients)} recipient(s)"
               " (secrets.age_recipients)"]
    if session.check:
        old = archive.to_remove([*existing, final.name], keep)
        details += [f"to {_shown(final)}", f"keeps the {keep} newest (backup.keep)"
                    + (f"; would remove {', '.join(old)}" if old else "")]
        _outcome(session, w.host.name, STEP,
                 Status.WOULD_CHANGE, t0, details)
        return
    with session.reporter.working(w.host.name, "backup") as activity:
        try:
            size = take(target, w.lay, st, manifest, final, age=age,
                        recipients=list(inv.secrets.age_recipients), on_output=activity.saw)
        except (CommandFailed, UserError) as exc:
            _outcome(session, w.host.name, STEP,
                     Status.FAILED, t0, [str(exc)])
            return
    gone = prune(w.folder, keep)
    details += [f"wrote {_shown(final)} ({mib(size)}, mode 0600)"]
    if gone:
        details.append(f"removed {', '.join(gone)} (backup.keep: {keep})")
    _outcome(session, w.host.name, STEP, Status.CHANGED,
             t0, details)


# restore --------------------------------------------------------------------------------

def chosen(folder: Path, file: str | None) -> Path:
    """``--file``, else the newest backup of the cluster."""
    if file:
        path = Path(file).expanduser()
        if not path.is_file():
            raise UserError(f"{file}: no such backup file")
        return path
    found = archive.backups(folder)
    if not found:
        raise UserError(f"no backup in {_shown(folder)}: run inv backup.create first, or give"
                        " --file")
    return found[-1]


def starter(session: Session, host: Host, node_name: str) -> str:
    """k3s.install's start of K3s and wait for the node (named as in the backup) Ready."""
    inv = session.inventory.data
    node: Node = nodes(inv)[host.name]
    files = host_files(context(inv), node)
    named = replace(node, host=replace(host, name=node_name))
    service = K3sService(named, [f.path for f in files], inv.k3s.ready_seconds)
    return service._script(restart=True)  # the same start as k3s.install


def _restore(session: Session, file: str | None) -> None:
    inv = session.inventory.data
    w = where(session)
    t0 = time.monotonic()
    path = chosen(w.folder, file)
    age = str(tool_path("age", inv.versions.age))
    key = keys.locate(session.inventory)
    plain = archive.decrypt(age, key.path, path)
    backup = Manifest.from_json(archive.member(plain, "manifest.json", str(path)).decode(),
                                str(path))
    target = session.connect(w.host)
    st = read_state(target, w.lay)
    why = restore_refusal(w.lay, backup, st, cluster=inv.k3s.cluster_name,
                          host=w.host.name)
    if why:
        raise UserError(f"{_shown(path)}: {why}; nothing was changed")
    step = f"restore: {path.name}"
    details = [f"backup of {backup.host} taken {backup.created} with K3s"
               f" {backup.k3s_version} ({backup.datastore})",
               "puts back: " + ", ".join(["the datastore", *(k.path for k in backup.files)])]
    sha = hashlib.sha256(plain).hexdigest()
    upload = upload_path(sha, "restore.tar")
    body = restore_script(w.lay, st, backup, host=w.host.name, upload=upload, sha256=sha,
                          stamp=archive.stamp(), start=starter(session, w.host, backup.host))
    if session.check:
        _outcome(session, w.host.name, step, Status.WOULD_CHANGE, t0,
                 [*details, "stops K3s, then starts it and waits for the node to be Ready"])
        return
    with session.reporter.working(w.host.name, "restore") as activity:
        try:
            activity.now(f"uploading {mib(len(plain))}")
            target.upload(plain, upload, on_output=activity.saw)
            del plain
            result = target.run(body, on_output=activity.saw)
            if not result.ok:
                raise CommandFailed(f"{w.host.name}: restoring", result.rc,
                                    result.stderr or result.stdout)
        except (CommandFailed, UserError) as exc:
            # The restore script's trap removes the upload; it may not have run.
            target.run(f"rm -f {q(upload)} {q(upload + '.part')}\n")
            _outcome(session, w.host.name, step, Status.FAILED, t0, [str(exc)])
            return
    _outcome(session, w.host.name, step, Status.CHANGED, t0,
             [*details, f"K3s restarted, node {backup.host} Ready; the previous datastore and"
              f" keys are kept in {w.lay.data_dir.rstrip('/')}/server/pre-restore-*"])


# list -----------------------------------------------------------------------------------

def listing(session: Session) -> list[str]:
    w = where(session)
    found = archive.backups(w.folder)
    if not found:
        return [f"no backup in {_shown(w.folder)}"]
    return [f"{_shown(p)}  {mib(p.stat().st_size)}" for p in reversed(found)]


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
