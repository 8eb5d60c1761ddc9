"""Packages the host layer needs, installed only when missing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.shell import cmd
from tasks.engine.step import Change, Step

BASE_PACKAGES = ("ufw", "fail2ban", "python3-systemd", "unattended-upgrades", "auditd")

APT_ENV = "DEBIAN_FRONTEND=noninteractive"
APT_OPTS = ("-q", "-y", "-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confdef",
            "-o", "Dpkg::Options::=--force-confold")


def _installed(raw: Raw) -> set[str]:
    # "name<TAB>ii " for installed packages. Names dpkg never heard of print nothing and
    # make it exit 1, so the output is read whatever the exit code.
    found = set()
    for line in raw.stdout.splitlines():
        name, _, status = line.partition("\t")
        if status.startswith("ii"):
            found.add(name.split(":")[0])
    return found


_FORMAT = "--showformat=${Package}\\t${db:Status-Abbrev}\\n"


def installed_fact(packages: Sequence[str]) -> Fact[set[str]]:
    return Fact(f"dpkg:{','.join(packages)}", cmd("dpkg-query", "-W", _FORMAT, *packages),
                _installed)


class Packages(Step):
    id = "packages"
    name = "packages"

    def __init__(self, extra: Sequence[str] = (), *, base: Sequence[str] = BASE_PACKAGES
                 ) -> None:
        self.packages = tuple(dict.fromkeys([*base, *extra]))
        self.fact = installed_fact(self.packages)

    def facts(self) -> Sequence[Fact[Any]]:
        return [self.fact]

    def plan(self, facts: Facts) -> list[Change]:
        missing = [p for p in self.packages if p not in facts[self.fact]]
        if not missing:
            return []
        install = cmd("apt-get", *APT_OPTS, "install", "--no-install-recommends", *missing)
        return [Change(f"install {' '.join(missing)}",
                       f"export {APT_ENV}\n{cmd('apt-get', *APT_OPTS, 'update')}\n{install}")]
