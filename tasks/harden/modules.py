"""Kernel modules nobody on a K3s VPS loads: rare filesystems, USB storage and FireWire,
exotic network protocols. Each gets ``install <name> /bin/false`` (a load, even on
demand, fails) and a ``blacklist`` line (no automatic load by alias).

What the host uses is never blocked: a module loaded now, a filesystem mounted now,
``vfat`` on a host booted by EFI (its system partition), ``squashfs`` where snaps are
installed (each snap is one), and whatever ``host.kernel.allow_modules`` lists. Nothing
K3s or containers need is on the list (overlay, br_netfilter, vxlan, nf_* stay).
Verified with ``modprobe -c``, the configuration modprobe actually reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, file_fact, lines
from tasks.engine.shell import write_file
from tasks.engine.step import Change, Step

CONFIG = "/etc/modprobe.d/stack-hardening.conf"

# (module, why nobody here needs it)
CANDIDATES: list[tuple[str, str]] = [
    ("cramfs", "old read-only flash filesystem"),
    ("freevxfs", "Veritas filesystem"),
    ("hfs", "classic Mac OS filesystem"),
    ("hfsplus", "Mac OS filesystem"),
    ("jffs2", "flash filesystem of embedded devices"),
    ("udf", "DVD and Blu-ray filesystem"),
    ("squashfs", "compressed read-only images (kept where snaps are installed)"),
    ("vfat", "FAT filesystems (kept on EFI hosts: the system partition)"),
    ("usb_storage", "USB disks: a VPS has no USB port"),
    ("firewire_core", "FireWire (IEEE 1394): a VPS has none"),
    ("firewire_ohci", "FireWire controllers"),
    ("firewire_sbp2", "FireWire disks"),
    ("dccp", "datagram congestion control protocol"),
    ("sctp", "SCTP (Kubernetes SCTP Services need it: host.kernel.allow_modules)"),
    ("rds", "reliable datagram sockets"),
    ("tipc", "cluster IPC protocol"),
]


def _name(module: str) -> str:
    return module.replace("-", "_")  # modprobe treats both as the same


@dataclass(frozen=True)
class InUse:
    loaded: frozenset[str]
    mounted: frozenset[str]
    efi: bool
    snaps: bool


def _in_use(raw: Raw) -> InUse:
    modules, _, rest = raw.stdout.partition("--\n")
    mounted, _, flags = rest.partition("--\n")
    return InUse(frozenset(_name(line.split()[0]) for line in modules.splitlines() if line),
                 frozenset(_name(f) for f in mounted.split()),
                 "efi" in flags.split(), "snap" in flags.split())


def _installs(raw: Raw) -> dict[str, str]:
    """``install <module> <command>`` lines of ``modprobe -c``: module -> command."""
    out = {}
    for line in lines(raw):
        words = line.split(None, 2)
        if len(words) == 3 and words[0] == "install":
            out[_name(words[1])] = words[2]
    return out


IN_USE = Fact("modules:in-use",
              "cut -d' ' -f1 /proc/modules; echo --; findmnt -rn -o FSTYPE | sort -u;"
              " echo --; [ -d /sys/firmware/efi ] && echo efi; command -v snap >/dev/null"
              " && echo snap; :", _in_use)
INSTALLS = Fact("modules:installs", "modprobe -c | grep -E '^install '", _installs)
CONTENT = file_fact(CONFIG)


def kept(in_use: InUse, allow: Sequence[str]) -> dict[str, str]:
    """Candidates this host needs: module -> why it stays loadable."""
    out = {}
    allowed = {_name(m) for m in allow}
    for module, _ in CANDIDATES:
        if module in allowed:
            out[module] = "host.kernel.allow_modules lists it"
        elif module in in_use.loaded:
            out[module] = "loaded now"
        elif module in in_use.mounted:
            out[module] = "a mounted filesystem"
        elif module == "vfat" and in_use.efi:
            out[module] = "EFI system partition"
        elif module == "squashfs" and in_use.snaps:
            out[module] = "snaps are squashfs images"
    return out


def blocked(in_use: InUse, allow: Sequence[str]) -> list[tuple[str, str]]:
    keep = kept(in_use, allow)
    return [(m, why) for m, why in CANDIDATES if m not in keep]


def config(modules: Sequence[tuple[str, str]]) -> str:
    body = [f"# {why}\ninstall {m} /bin/false\nblacklist {m}" for m, why in modules]
    return "\n".join(["# Managed by k3s-vps-platform (inv host.harden).", *body, ""])


class Modules(Step):
    """``allow``: the inventory's ``host.kernel.allow_modules``."""

    id = "modules"
    name = "kernel: unused modules blocked"

    def __init__(self, allow: Sequence[str] = ()) -> None:
        self.allow = tuple(allow)

    def facts(self) -> Sequence[Fact[Any]]:
        return [IN_USE, CONTENT, INSTALLS]

    def plan(self, facts: Facts) -> list[Change]:
        wanted = config(blocked(facts[IN_USE], self.allow))
        if facts[CONTENT] == wanted:
            return []
        return [Change(f"write {CONFIG}", write_file(CONFIG, wanted))]

    def verify(self, facts: Facts) -> list[str]:
        installs = facts[INSTALLS]
        return [f"modprobe -c: {m} is not blocked ({installs.get(m, 'no install line')})"
                for m, _ in blocked(facts[IN_USE], self.allow)
                if installs.get(m) != "/bin/false"] + super().verify(facts)

    def notes(self, facts: Facts) -> list[str]:
        keep = kept(facts[IN_USE], self.allow)
        return [f"left loadable: {', '.join(f'{m} ({why})' for m, why in keep.items())}"
                ] if keep else []
