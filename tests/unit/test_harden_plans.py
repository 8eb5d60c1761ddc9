"""Host-layer mechanics the data cases (tests/unit/test_host_data.py) do not show well.

The wanted values and the plans of fresh, converged and drifted hosts are pinned as data
under tests/unit/fixtures/host/; here: the firewall's reconciliation replayed on every
kind of rule list, the sysctl sed run for real on a file, parsers' corner cases, the
inventory's node addresses, known_hosts rotation. Facts are literal text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.target import LocalTarget
from tasks.harden import fail2ban, firewall, packages, sshd, sysctl

HOST_DATA = Path(__file__).parent / "fixtures" / "host"


def facts(**raw: tuple[Fact[Any], str, int] | tuple[Fact[Any], str]) -> Facts:
    out = {}
    for value in raw.values():
        fact, stdout, *rc = value
        out[fact.key] = Raw(stdout, rc[0] if rc else 0)
    return Facts(out)


def summaries(step: Any, f: Facts) -> list[str]:
    return [c.summary for c in step.plan(f)]


# packages ---------------------------------------------------------------------------

@pytest.mark.parametrize(("dpkg", "rc", "expected"), [
    # known to dpkg, not installed
    ("ufw\tun \nfail2ban\tii \npython3-systemd\tii \nunattended-upgrades\tii \nauditd\tii \n",
     0, ["install ufw"]),
    # some names unknown: dpkg exits 1, the lines it did print still count
    ("ufw\trc \nfail2ban\tii \n", 1, ["install ufw python3-systemd unattended-upgrades auditd"]),
])
def test_packages_read_dpkg_whatever_its_exit_code(dpkg: str, rc: int,
                                                   expected: list[str]) -> None:
    step = packages.Packages()
    assert summaries(step, facts(p=(step.fact, dpkg, rc))) == expected


# the dead-man switch ----------------------------------------------------------------

def test_only_the_access_steps_are_guarded() -> None:
    """The slow host key and moduli work runs before the dead-man switch is armed."""
    assert not sshd.SshdKeys.guarded
    assert sshd.Sshd.guarded and firewall.Firewall.guarded and fail2ban.Fail2ban.guarded
    assert not sysctl.Sysctl.guarded and not packages.Packages.guarded


# firewall ---------------------------------------------------------------------------

POLICY = firewall.FirewallPolicy(
    ssh_port=22, live_ssh_ports=(22,), open_tcp=(80, 443), api_port=6443,
    operators=("203.0.113.10/32",), nodes=("203.0.113.20/32",),
    cluster_cidrs=("10.42.0.0/16", "10.43.0.0/16"))
RULES = [
    "allow from 203.0.113.10 to any port 22 proto tcp",
    "limit 22/tcp",
    "allow 80/tcp",
    "allow 443/tcp",
    "allow from 203.0.113.10 to any port 6443 proto tcp",
    "allow from 203.0.113.20 to any port 6443 proto tcp",
    "allow from 10.42.0.0/16",
    "allow from 10.43.0.0/16",
]
STATUS_ON = ("status=active\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n"
             "IPV6=yes\n")
SHOWN = "Added user rules (see 'ufw status' for running firewall):\n" + "".join(
    f"ufw {r}\n" for r in RULES)


def fw_facts(shown: str = SHOWN, status: str = STATUS_ON, installed: int = 0,
             order: str = "--\n") -> Facts:
    return facts(i=(firewall.UFW_INSTALLED, "/usr/sbin/ufw", installed),
                 a=(firewall.ADDED, shown), s=(firewall.STATUS, status),
                 o=(firewall.ORDER, order))


def ufw_tuples(*rules: str) -> str:
    """/etc/ufw/user.rules tuples as ``grep '### tuple ###'`` prints them (IPv4 only)."""
    return "".join(f"### tuple ### {r}\n" for r in rules) + "--\n"


def test_firewall_order_only_matters_for_operators_before_the_ssh_limit() -> None:
    swapped = [RULES[0], RULES[2], RULES[1], *RULES[3:]]  # allow 80 before the limit: fine
    shown = "".join(f"ufw {r}\n" for r in swapped) + "ufw allow 6443/tcp\n"
    assert summaries(firewall.Firewall(POLICY), fw_facts(shown=shown)) == [
        "delete rule: allow 6443/tcp"]


def test_firewall_moves_a_rate_limit_found_before_the_operators() -> None:
    shown = "".join(f"ufw {r}\n" for r in [RULES[1], RULES[0], *RULES[2:]])
    order = ufw_tuples("limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
                       "allow tcp 22 0.0.0.0/0 any 203.0.113.10 in",
                       "allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in")
    (change,) = firewall.Firewall(POLICY).plan(fw_facts(shown=shown, order=order))
    assert change.summary == "move rule after the operators' SSH rules: limit 22/tcp"
    # the operators' allow is never touched: only the public rule goes and comes back
    assert change.script == "ufw delete limit 22/tcp\nufw limit 22/tcp"


def test_firewall_ipv6_operator_after_the_limit_in_show_added_is_not_misordered() -> None:
    """``ufw show added`` lists IPv6-only rules last; the order is judged per family."""
    policy = firewall.FirewallPolicy(22, (22,), (), 6443, ("2001:db8::/64",), (), ())
    shown = "ufw limit 22/tcp\nufw allow from 2001:db8::/64 to any port 22 proto tcp\n" \
            "ufw allow from 2001:db8::/64 to any port 6443 proto tcp\n"
    order = ("### tuple ### limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n--\n"
             "### tuple ### allow tcp 22 ::/0 any 2001:db8::/64 in\n"
             "### tuple ### limit tcp 22 ::/0 any ::/0 in\n"
             "### tuple ### allow tcp 6443 ::/0 any 2001:db8::/64 in\n")
    assert firewall.Firewall(policy).plan(fw_facts(shown=shown, order=order)) == []


WANTED_OPERATOR_SSH = "allow from 203.0.113.10 to any port 22 proto tcp"


@pytest.mark.parametrize("current", [
    [],
    RULES,
    RULES[::-1],
    [r for r in RULES if "6443" not in r] + ["allow 6443/tcp", "allow 8080/tcp"],
    ["limit 22/tcp", "allow 80/tcp", "allow from 198.51.100.0/24 to any port 22 proto tcp"],
    [WANTED_OPERATOR_SSH, "allow 22/tcp", "allow from 10.0.0.0/8"],
])
def test_firewall_reconcile_never_drops_the_operators_ssh_allow(current: list[str]) -> None:
    """Replays the plan on a list that behaves like ufw's (prepend, append, delete): the
    operator's SSH allow is never deleted, every add comes before every delete, and the
    result is the wanted set with the operators first."""
    shown = "".join(f"ufw {r}\n" for r in current)
    as_tuple = {WANTED_OPERATOR_SSH: "allow tcp 22 0.0.0.0/0 any 203.0.113.10 in",
                "limit 22/tcp": "limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
                "allow 22/tcp": "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in"}
    order = ufw_tuples(*(as_tuple[r] for r in current if r in as_tuple))
    rules = list(current)
    deleting = False
    for change in firewall.Firewall(POLICY).plan(fw_facts(shown=shown, order=order)):
        for line in change.script.splitlines():
            words = line.split()
            had_allow = WANTED_OPERATOR_SSH in rules
            if words[:2] == ["ufw", "prepend"]:
                assert not deleting, change.summary
                rules.insert(0, " ".join(words[2:]))
            elif words[:2] == ["ufw", "delete"]:
                rules.remove(" ".join(words[2:]))
                deleting = deleting or not change.summary.startswith("move")
            elif words[1] not in ("default", "--force"):
                assert not deleting, change.summary  # adds first, deletes after
                rules.append(" ".join(words[1:]))
            assert WANTED_OPERATOR_SSH in rules or not had_allow, line
    assert sorted(rules) == sorted(RULES)
    assert rules.index(WANTED_OPERATOR_SSH) < rules.index("limit 22/tcp")


def test_firewall_api_port_never_open_to_the_world() -> None:
    assert not any("6443" in r and "from" not in r for r in POLICY.rules())


def test_firewall_moving_the_port_keeps_the_live_one_until_it_is_closed() -> None:
    moving = firewall.FirewallPolicy(2222, (22,), (80, 443), 6443, ("203.0.113.10/32",),
                                     (), ())
    assert summaries(firewall.Firewall(moving), fw_facts()) == [
        "add rule: allow from 203.0.113.10 to any port 2222 proto tcp (before the public"
        " SSH rules)",
        "add rule: limit 2222/tcp",
        "delete rule: allow from 203.0.113.20 to any port 6443 proto tcp",
        "delete rule: allow from 10.42.0.0/16",
        "delete rule: allow from 10.43.0.0/16",
    ]
    moved = firewall.FirewallPolicy(2222, (2222,), (80, 443), 6443, ("203.0.113.10/32",),
                                    ("203.0.113.20/32",), ("10.42.0.0/16", "10.43.0.0/16"))
    shown = SHOWN + "ufw allow from 203.0.113.10 to any port 2222 proto tcp\n" \
        "ufw limit 2222/tcp\n"
    assert summaries(firewall.Firewall(moved), fw_facts(shown=shown)) == [
        "delete rule: allow from 203.0.113.10 to any port 22 proto tcp",
        "delete rule: limit 22/tcp",
    ]


def test_firewall_live_port_and_no_rate_limit() -> None:
    policy = firewall.FirewallPolicy(22, (2222,), (), 6443, ("10.0.0.0/8",), (), (),
                                     rate_limit_ssh=False)
    assert policy.rules() == [
        "allow from 10.0.0.0/8 to any port 22 proto tcp",
        "allow from 10.0.0.0/8 to any port 2222 proto tcp",
        "allow 22/tcp", "allow 2222/tcp",
        "allow from 10.0.0.0/8 to any port 6443 proto tcp",
    ]


def test_firewall_default_policy_drift() -> None:
    status = STATUS_ON.replace('INPUT_POLICY="DROP"', 'INPUT_POLICY="ACCEPT"')
    assert summaries(firewall.Firewall(POLICY), fw_facts(status=status)) == [
        "default policy: deny incoming, allow outgoing"]


# fail2ban ---------------------------------------------------------------------------

JAIL = fail2ban.JailPolicy((22,), "10m", "10m", 5, ("203.0.113.10/32",))
JAIL_FILE = """\
# Managed by k3s-vps-platform (inv host.harden): local edits are overwritten.
# sshd jail on the systemd journal (Debian 12 has no auth.log).
[DEFAULT]
ignoreip = 127.0.0.1/8 ::1 203.0.113.10/32

[sshd]
enabled = true
backend = systemd
port = 22
bantime = 10m
findtime = 10m
maxretry = 5
"""


def test_fail2ban_active_but_the_client_answers_nothing() -> None:
    """systemd says active, yet fail2ban-client printed nothing (the fact gave up
    waiting for the socket): every live value is unknown, so the jail is restarted."""
    f = facts(c=(fail2ban.JAIL_CONTENT, JAIL_FILE), u=(fail2ban._UNITS, "enabled\n--\nactive\n"),
              l=(fail2ban.LIVE, "\n"))
    assert summaries(fail2ban.Fail2ban(JAIL), f) == [
        "enable and restart fail2ban (live jail: bantime is unknown, want 600)"]


def test_fail2ban_durations() -> None:
    assert [fail2ban.seconds(d) for d in ("10m", "1h", "30s", "1d", "1h30m")] == [
        600, 3600, 30, 86400, 5400]


# sysctl -----------------------------------------------------------------------------

def data_facts(case: str) -> Facts:
    """The facts of a host data case (tests/unit/fixtures/host/<case>.yaml)."""
    data = yaml.safe_load((HOST_DATA / case).read_text())
    return Facts({k: Raw(v["stdout"], v["rc"]) for k, v in data["facts"].items()})


def test_sysctl_sed_turns_ufws_shipped_file_into_the_converged_one(tmp_path: Path) -> None:
    """The planned sed, run for real on a copy of ufw's sysctl.conf as shipped (data case
    sysctl/ufw-sysctl-conflict), gives the file of the converged host (sysctl/converged)."""
    shipped = data_facts("sysctl/ufw-sysctl-conflict.yaml")
    (change,) = [c for c in sysctl.Sysctl().plan(shipped) if sysctl.UFW_SYSCTL in c.summary]
    copy = tmp_path / "sysctl.conf"
    copy.write_text(shipped[sysctl.UFW_CONTENT] or "")
    result = LocalTarget().run(change.script.replace(sysctl.UFW_SYSCTL, str(copy)))
    assert result.ok, result.stderr
    assert copy.read_text() == data_facts("sysctl/converged.yaml")[sysctl.UFW_CONTENT]
    assert sysctl.ufw_conflicts(copy.read_text()) == []


# inventory -> firewall -------------------------------------------------------------

def test_api_port_nodes_use_internal_addresses_and_skip_names() -> None:
    from tasks.harden import firewall_policy, node_networks
    from tasks.model.fields import build
    from tasks.model.model import Inventory

    host = {"user": "admin", "key_file": "k"}
    inv, errors = build(Inventory, {
        "domain": "example.com", "acme_email": "ops@example.com", "operators": ["198.51.100.7/32"],
        "hosts": [{**host, "name": "a", "address": "203.0.113.20"},
                  {**host, "name": "b", "address": "vps-b.example.com", "role": "agent",
                   "internal_address": "10.0.0.12"},
                  {**host, "name": "c", "address": "node-c.example.com", "role": "agent"},
                  {**host, "name": "lab", "address": "127.0.0.1", "role": "agent"}]})
    assert errors == []
    assert node_networks(inv) == ("203.0.113.20/32", "10.0.0.12/32")
    rules = firewall_policy(inv, 22).rules()
    assert "allow from 10.0.0.12 to any port 6443 proto tcp" in rules


# known_hosts --------------------------------------------------------------------------

def test_known_hosts_rotation_replaces_only_that_hosts_key_of_that_type() -> None:
    from tasks.harden.known_hosts import replace_keys

    text = ("# project hosts\n"
            "[127.0.0.1]:2222 ssh-rsa OLD\n"
            "[127.0.0.1]:2222 ssh-ed25519 ED\n"
            "[127.0.0.1]:40000 ssh-rsa OLD\n"
            "[127.0.0.1]:3333 ssh-rsa OTHERHOST\n"
            "@cert-authority *.example.com ssh-rsa CA\n")
    new, changed = replace_keys(text, ["[127.0.0.1]:2222", "[127.0.0.1]:40000"],
                                {"ssh-rsa": "NEW", "ssh-ed25519": "ED"})
    assert changed == ["ssh-rsa"]
    assert new == ("# project hosts\n"
                   "[127.0.0.1]:2222 ssh-rsa NEW\n"
                   "[127.0.0.1]:2222 ssh-ed25519 ED\n"
                   "[127.0.0.1]:40000 ssh-rsa NEW\n"
                   "[127.0.0.1]:3333 ssh-rsa OTHERHOST\n"
                   "@cert-authority *.example.com ssh-rsa CA\n")


def test_known_hosts_hashed_entries_match() -> None:
    import base64
    import hashlib
    import hmac

    from tasks.harden.known_hosts import replace_keys

    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, b"[127.0.0.1]:2222", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    new, changed = replace_keys(f"{hashed} ssh-rsa OLD\n", ["[127.0.0.1]:2222"],
                                {"ssh-rsa": "NEW"})
    assert (new, changed) == (f"{hashed} ssh-rsa NEW\n", ["ssh-rsa"])


def test_inter_node_ports_between_nodes_only() -> None:
    from tasks.harden import firewall_policy
    from tasks.model.fields import build
    from tasks.model.model import Inventory

    host = {"user": "admin", "key_file": "k"}
    inv, errors = build(Inventory, {
        "domain": "example.com", "acme_email": "ops@example.com",
        "operators": ["198.51.100.7/32"],
        "hosts": [{**host, "name": "s1", "address": "203.0.113.1"},
                  {**host, "name": "s2", "address": "203.0.113.2"},
                  {**host, "name": "w1", "address": "203.0.113.3", "role": "agent"}]})
    assert errors == []
    s1 = firewall_policy(inv, 22, inv.hosts[0]).rules()
    assert [r for r in s1 if "8472" in r or "10250" in r or "2379" in r] == [
        "allow from 203.0.113.2 to any port 8472 proto udp",
        "allow from 203.0.113.2 to any port 10250 proto tcp",
        "allow from 203.0.113.3 to any port 8472 proto udp",
        "allow from 203.0.113.3 to any port 10250 proto tcp",
        "allow from 203.0.113.2 to any port 2379:2380 proto tcp"]
    w1 = firewall_policy(inv, 22, inv.hosts[2]).rules()
    assert not [r for r in w1 if "2379" in r]  # no etcd on an agent
    assert "allow from 203.0.113.1 to any port 10250 proto tcp" in w1
    single, _ = build(Inventory, {"domain": "example.com", "acme_email": "ops@example.com",
                                  "operators": ["198.51.100.7/32"],
                                  "hosts": [{**host, "name": "s1", "address": "203.0.113.1"}]})
    assert not [r for r in firewall_policy(single, 22, single.hosts[0]).rules()
                if "8472" in r or "10250" in r]  # one node: nothing opened


# sshd forwarding ------------------------------------------------------------------------

def test_sshd_forwarding_allows_exactly_the_api_tunnel() -> None:
    """kubectl's tunnel (tasks/cluster/access.py) opens a direct-tcpip channel to
    127.0.0.1 on the API port: the one destination sshd's PermitOpen lets through."""
    import inspect

    from tasks.cluster import access

    assert sshd.MANAGED["allowtcpforwarding"] == "local"
    assert sshd.MANAGED["permitopen"] == "127.0.0.1:6443 localhost:6443"
    assert access.API_PORT == sshd.API_PORT == 6443
    assert 'ssh.tunnel("127.0.0.1", API_PORT)' in inspect.getsource(access)


def test_sysctl_says_why_router_advertisements_stay() -> None:
    ra = data_facts("sysctl/ipv6-by-router-advertisement.yaml")
    assert sysctl.Sysctl().notes(ra) == [
        "IPv6 router advertisements kept: this host has routes learnt from them"
        " (host.kernel.accept_ra: no refuses them anyway)"]
    assert sysctl.Sysctl("no").notes(ra) == sysctl.Sysctl("yes").notes(ra) == []
    assert sysctl.Sysctl().notes(data_facts("sysctl/fresh-debian-12.yaml")) == []


# kernel modules -------------------------------------------------------------------------

def test_modules_say_which_stay_loadable_and_why() -> None:
    from tasks.harden import modules

    f = data_facts("modules/efi-snaps-and-an-allowed-module.yaml")
    assert modules.Modules(["sctp"]).notes(f) == [
        "left loadable: udf (loaded now), squashfs (a mounted filesystem), vfat (loaded now),"
        " sctp (host.kernel.allow_modules lists it)"]
    assert modules.Modules().notes(data_facts("modules/fresh-debian-12.yaml")) == []


def test_modules_never_block_what_k3s_and_containers_load() -> None:
    from tasks.harden import modules

    names = {m for m, _ in modules.CANDIDATES}
    assert not names & {"overlay", "br_netfilter", "vxlan", "nf_conntrack", "ip_tables",
                        "iptable_nat", "xt_conntrack", "ext4", "xfs", "btrfs"}


# login.defs and /etc/fstab edits, run for real on copies --------------------------------

def run_on_copy(script: str, path: str, copy: Path) -> None:
    result = LocalTarget().run(script.replace(path, str(copy)))
    assert result.ok, result.stderr


def test_login_defs_values_replaced_in_place_or_appended(tmp_path: Path) -> None:
    from tasks.harden import login

    copy = tmp_path / "login.defs"
    copy.write_text("# UMASK 022 in a comment stays\nUMASK\t\t022\nPASS_MAX_DAYS\t99999\n"
                    "MAIL_DIR /var/mail\n")
    grep = "".join(line + "\n" for line in copy.read_text().splitlines()
                   if line.split()[0] in dict(login.LOGIN_DEFS_VALUES))
    f = facts(d=(login.DEFS, grep), l=(login.LIMITS_FILE, login.LIMITS_CONTENT))
    (change,) = login.Login().plan(f)
    run_on_copy(change.script, login.LOGIN_DEFS, copy)
    assert copy.read_text() == (
        "# UMASK 022 in a comment stays\nUMASK\t027\nPASS_MAX_DAYS\t60\nMAIL_DIR /var/mail\n"
        "PASS_MIN_DAYS\t7\nPASS_WARN_AGE\t7\nLOGIN_RETRIES\t5\nLOGIN_TIMEOUT\t60\n"
        "ENCRYPT_METHOD\tSHA512\n")


@pytest.mark.parametrize("fstab", [
    "UUID=1 / ext4 errors=remount-ro 0 1\ntmpfs /dev/shm tmpfs defaults,nosuid,nodev 0 0\n"
    "UUID=2 none swap sw 0 0\n",
    "UUID=1 / ext4 errors=remount-ro 0 1\nUUID=2 none swap sw 0 0\n",
])
def test_fstab_gets_exactly_one_hardened_dev_shm_line(tmp_path: Path, fstab: str) -> None:
    from tasks.harden import mounts

    copy = tmp_path / "fstab"
    copy.write_text(fstab)
    line = next((x for x in fstab.splitlines() if " /dev/shm " in x), "")
    f = facts(s=(mounts.STATE, f"rw,nosuid,nodev,noexec\n--\n{line}\n"))
    (change,) = mounts.DevShm().plan(f)
    run_on_copy(change.script, mounts.FSTAB, copy)
    kept = [x for x in copy.read_text().splitlines() if " /dev/shm " not in x]
    assert kept == [x for x in fstab.splitlines() if " /dev/shm " not in x]
    assert [x for x in copy.read_text().splitlines() if " /dev/shm " in x] == [
        "tmpfs /dev/shm tmpfs defaults,nosuid,nodev,noexec 0 0"]
