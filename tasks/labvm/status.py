"""What ``inv lab.status`` shows: each lab VM, its port and state; the base images' age."""

from __future__ import annotations

import time

from tasks.labvm import image, inventory_file, net, vm
from tasks.labvm.paths import LabPaths


def status_lines(paths: LabPaths | None = None, now: float | None = None) -> list[str]:
    """What ``lab.status`` prints: each VM and each cached base image."""
    paths = paths or LabPaths.default()
    now = now or time.time()
    lines = []
    names = paths.vm_names()
    if not names:
        lines.append("no lab VMs (inv lab.up starts one)")
    for name in names:
        v = paths.vm(name)
        state = vm.read_state(v)
        if state is None:
            continue
        pid = vm.pid(v)
        if pid is None:
            what = "stopped"
        else:
            since = (f"up {_age(now - state.started_at)}" if state.started_at else
                     "booting, no SSH yet")
            what = f"running (pid {pid}, {state.accel}, {since})"
        lines.append(f"{name}: {what}, ssh {net.HOST}:{state.port}, base {state.base},"
                     f" created {_age(now - state.created_at)} ago")
    for d in sorted(paths.base_root.iterdir()) if paths.base_root.is_dir() else []:
        base = image.load(d)
        if base is not None:
            size = sum(f.stat().st_size for f in d.iterdir()) / 2**20
            lines.append(f"base image {base.hash}: {base.info.get('kernel', '?')}, built"
                         f" {_age(now - float(base.info.get('built_at', now)))} ago,"
                         f" {size:.0f} MiB")
    if paths.inventory.is_file():
        lines.append(f"inventory: {inventory_file.shown(paths.inventory)}")
    return lines


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
