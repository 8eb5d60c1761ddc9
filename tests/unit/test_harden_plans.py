"""Host-layer decisions, table-driven: facts (as the host prints them) in, changes out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasks.engine.errors import UserError
from tasks.engine.facts import Fact, Facts, Raw
from tasks.engine.target import LocalTarget
from tasks.harden import fail2ban, firewall, packages, preflight, sshd, sysctl, updates
from tasks.harden.facts import OS_RELEASE

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
KEX_92 = "\n".join([*sshd.KEX, "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256"])


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
    ("ufw\tii \nfail2ban\tii \npython3-systemd\tii \nunattended-upgrades\tii \n", 0, []),
    ("ufw\tun \nfail2ban\tii \npython3-systemd\tii \nunattended-upgrades\tii \n", 0,
     ["install ufw"]),
    ("", 1, ["install ufw fail2ban python3-systemd unattended-upgrades"]),
    ("ufw\trc \nfail2ban\tii \n", 1, ["install ufw python3-systemd unattended-upgrades"]),
])
def test_packages(dpkg: str, rc: int, expected: list[str]) -> None:
    step = packages.Packages()
    assert summaries(step, facts(p=(step.fact, dpkg, rc))) == expected


def test_package_install_is_noninteractive_and_quoted() -> None:
    step = packages.Packages(["jq"])
    (change,) = step.plan(facts(p=(step.fact, "", 1)))
    assert "DEBIAN_FRONTEND=noninteractive" in change.script
    assert "apt-get -q -y -o DPkg::Lock::Timeout=300" in change.script
    assert change.script.rstrip().endswith("unattended-upgrades jq")


# sshd -------------------------------------------------------------------------------

def effective(**override: str) -> str:
    values = {**sshd.expected_effective(set(sshd.KEX)), **override}
    return "\n".join(f"{k} {v}" for k, v in values.items() if k != "port") + (
        "".join(f"\nport {p}" for p in values["port"].split()) + "\n")


def sshd_facts(*, drop_in: str | None = None, others: str = "", include: int = 0,
               eff: str | None = None, kex: str = KEX_92, main_ports: str = "0",
               socket: str = "inactive\n", ports: tuple[int, ...] = (22,)) -> Facts:
    drop = sshd.drop_in(set(kex.split()), ports) if drop_in is None else drop_in
    return facts(
        e=(sshd.EFFECTIVE, eff if eff is not None else effective()),
        k=(sshd.SUPPORTED_KEX, kex),
        d=(sshd.DROP_IN_CONTENT, drop, 0 if drop else 1),
        i=(sshd.HAS_INCLUDE, "", include),
        o=(sshd.OTHER_DROP_INS, others, 0 if others else 1),
        m=(sshd.MAIN_PORT_LINES, main_ports, 0 if main_ports != "0" else 1),
        s=(sshd.SOCKET, socket, 0 if socket.startswith("active") else 3),
    )


def test_sshd_converged_host_needs_nothing() -> None:
    assert sshd.Sshd().plan(sshd_facts()) == []


def test_sshd_fresh_vps() -> None:
    f = sshd_facts(drop_in="", others="/etc/ssh/sshd_config.d/50-cloud-init.conf\n",
                   eff=effective(passwordauthentication="yes", permitrootlogin="yes"))
    assert summaries(sshd.Sshd(), f) == [
        "snapshot /etc/ssh (restored if sshd -t fails)",
        "write /etc/ssh/sshd_config.d/00-stack-hardening.conf",
        "neutralise /etc/ssh/sshd_config.d/50-cloud-init.conf (comment out settings we manage)",
        "check with sshd -t, reload ssh",
    ]


def test_sshd_keys_are_their_own_step_before_the_guard() -> None:
    keys = sshd.SshdKeys()
    assert not keys.guarded and sshd.Sshd.guarded
    slow = facts(r=(sshd.RSA_KEY_BITS, "3072 SHA256:x root@h (RSA)"),
                 w=(sshd.WEAK_MODULI, "127"))
    assert summaries(keys, slow) == [
        "regenerate the RSA host key with 4096 bits (was 3072)",
        "drop 127 Diffie-Hellman groups smaller than 3072 bits"]
    script = keys.plan(slow)[0].script
    assert "generating a 4096-bit RSA host key" in script  # the live progress line
    assert script.index("ssh-keygen") < script.index("mv -f /etc/ssh/ssh_host_rsa_key.stack-new")
    done = facts(r=(sshd.RSA_KEY_BITS, "4096 SHA256:x root@h (RSA)"), w=(sshd.WEAK_MODULI, "0"))
    assert keys.plan(done) == []


def test_sshd_validation_restores_on_failure_and_reloads_on_success() -> None:
    changes = sshd.Sshd().plan(sshd_facts(drop_in=""))
    script = "".join(c.script for c in changes)
    assert script.index("cp -a /etc/ssh/.") < script.index("base64 -d") < script.index("sshd -t")
    assert 'cp -a "$B/." /etc/ssh/' in script and "exit 1" in script
    assert "systemctl reload ssh" in script


def test_sshd_missing_include_is_added() -> None:
    assert "include /etc/ssh/sshd_config.d/*.conf from /etc/ssh/sshd_config" in summaries(
        sshd.Sshd(), sshd_facts(include=1))


def test_sshd_effective_drift_reloads() -> None:
    f = sshd_facts(eff=effective(passwordauthentication="yes"))
    assert summaries(sshd.Sshd(), f)[1].startswith(
        "sshd differs (sshd -T: passwordauthentication is 'yes', want 'no')")
    assert sshd.Sshd().verify(f)[0] == "sshd -T: passwordauthentication is 'yes', want 'no'"


def test_sshd_leaves_out_kex_the_server_does_not_know() -> None:
    old = "\n".join(k for k in sshd.KEX if k != "sntrup761x25519-sha512")
    text = sshd.drop_in(set(old.split()))
    assert "KexAlgorithms sntrup761x25519-sha512@openssh.com," in text
    assert sshd.drop_in(set(sshd.KEX)).count("sntrup761x25519-sha512") == 2


def test_sshd_drop_in_content() -> None:
    text = sshd.drop_in(set(sshd.KEX))
    for line in ("PermitRootLogin no", "PasswordAuthentication no",
                 "KbdInteractiveAuthentication no", "AuthenticationMethods publickey",
                 "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
                 "MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,"
                 "umac-128-etm@openssh.com"):
        assert line in text.splitlines()


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


def test_firewall_rules_in_order() -> None:
    assert POLICY.rules() == RULES


def test_firewall_converged() -> None:
    assert firewall.Firewall(POLICY).plan(fw_facts()) == []


def test_firewall_fresh_host_without_ufw() -> None:
    (change,) = firewall.Firewall(POLICY).plan(fw_facts(shown="", installed=1))
    assert change.summary == "configure ufw (8 rules) and enable it"
    assert change.script.splitlines() == [
        "ufw allow from 203.0.113.10 to any port 22 proto tcp",
        "ufw limit 22/tcp",
        "ufw allow 80/tcp",
        "ufw allow 443/tcp",
        "ufw allow from 203.0.113.10 to any port 6443 proto tcp",
        "ufw allow from 203.0.113.20 to any port 6443 proto tcp",
        "ufw allow from 10.42.0.0/16",
        "ufw allow from 10.43.0.0/16",
        "ufw default deny incoming",
        "ufw default allow outgoing",
        "ufw --force enable",  # only after the SSH rules exist
    ]


def test_firewall_inactive_with_rules_missing() -> None:
    status = STATUS_ON.replace("active", "inactive")
    shown = "Added user rules (see 'ufw status' for running firewall):\n(None)\n"
    got = summaries(firewall.Firewall(POLICY), fw_facts(shown=shown, status=status))
    assert got == [
        "add rule: allow from 203.0.113.10 to any port 22 proto tcp (before the public SSH"
        " rules)",
        "add rule: limit 22/tcp",
        "add rule: allow 80/tcp",
        "add rule: allow 443/tcp",
        "add rule: allow from 203.0.113.10 to any port 6443 proto tcp",
        "add rule: allow from 203.0.113.20 to any port 6443 proto tcp",
        "add rule: allow from 10.42.0.0/16",
        "add rule: allow from 10.43.0.0/16",
        "enable ufw",
    ]


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


def test_firewall_script_quotes_every_word() -> None:
    (change,) = firewall.Firewall(POLICY).plan(fw_facts(shown="", installed=1))
    assert "ufw allow from 203.0.113.10 to any port 22 proto tcp" in change.script


# fail2ban ---------------------------------------------------------------------------

JAIL = fail2ban.JailPolicy((22,), "10m", "10m", 5, ("203.0.113.10/32",))
LIVE_OK = ("Fail2Ban v1.0.2 reads log file that contains password failure report\n\n"
           "fail2ban> 600\nfail2ban> 600\nfail2ban> 5\nfail2ban> Current match filter:\n"
           "_SYSTEMD_UNIT=sshd.service + _COMM=sshd\n"
           "fail2ban> These IP addresses/networks are ignored:\n|- 127.0.0.0/8\n|- ::1\n"
           "`- 203.0.113.10\nfail2ban> ERROR   EOF when reading a line\n")


def f2b_facts(content: str | None = None, units: str = "enabled,active",
              live: str = LIVE_OK) -> Facts:
    c = JAIL.config() if content is None else content
    return facts(c=(fail2ban.JAIL_CONTENT, c, 0 if c else 1),
                 u=(fail2ban._UNITS, units.replace("fail2ban.service=", "").replace(",", "\n--\n")),
              l=(fail2ban.LIVE, live))


def test_fail2ban_jail_file() -> None:
    text = JAIL.config()
    for line in ("[sshd]", "enabled = true", "backend = systemd", "bantime = 10m",
                 "maxretry = 5", "ignoreip = 127.0.0.1/8 ::1 203.0.113.10/32"):
        assert line in text.splitlines()


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, []),
    ({"content": ""}, ["write /etc/fail2ban/jail.d/00-stack-sshd.local",
                       "enable and restart fail2ban (apply the jail)"]),
    ({"units": "disabled,inactive"},
     ["enable and restart fail2ban (service is disabled/inactive)"]),
    ({"live": LIVE_OK.replace("fail2ban> 5", "fail2ban> 3")},
     ["enable and restart fail2ban (live jail: maxretry is 3, want 5)"]),
    ({"live": LIVE_OK.replace("`- 203.0.113.10\n", "")},
     ["enable and restart fail2ban (live jail: ignoreip lacks 203.0.113.10/32)"]),
    ({"live": LIVE_OK.replace("_SYSTEMD_UNIT=sshd.service + _COMM=sshd", "")},
     ["enable and restart fail2ban (live jail: journal is no, want yes)"]),
    ({"live": ""}, ["enable and restart fail2ban (live jail: bantime is unknown, want 600)"]),
])
def test_fail2ban_plans(kw: dict[str, str], expected: list[str]) -> None:
    assert summaries(fail2ban.Fail2ban(JAIL), f2b_facts(**kw)) == expected


def test_fail2ban_durations() -> None:
    assert [fail2ban.seconds(d) for d in ("10m", "1h", "30s", "1d", "1h30m")] == [
        600, 3600, 30, 86400, 5400]


# sysctl and updates -----------------------------------------------------------------

def sysctl_live(**override: str) -> str:
    """As ``sysctl -e`` prints it: ``key = value``; keys the kernel lacks are absent."""
    values = {k: v for k, v, _ in sysctl.SETTINGS}
    values.update(override)
    return "".join(f"{k} = {v}\n" for k, v in values.items() if v != "<absent>")


UFW_SYSCTL_DEBIAN = ("net/ipv4/conf/all/accept_redirects=0\n#net/ipv4/ip_forward=1\n"
                     "net/ipv4/conf/all/log_martians=0\nnet/ipv4/conf/default/log_martians=0\n")
UFW_SYSCTL_FIXED = UFW_SYSCTL_DEBIAN.replace(
    "net/ipv4/conf/all/log_martians=0",
    "# overridden by host.harden (/etc/sysctl.d/99-zz-stack-hardening.conf):"
    " net/ipv4/conf/all/log_martians=0")


def sysctl_facts(live: str | None = None, content: str | None = None,
                 ufw: str = UFW_SYSCTL_FIXED) -> Facts:
    present = {k for k, _, _ in sysctl.SETTINGS}
    c = sysctl.config(present) if content is None else content
    return facts(l=(sysctl.LIVE, sysctl_live() if live is None else live),
                 c=(sysctl.CONTENT, c, 0 if c else 1), u=(sysctl.UFW_CONTENT, ufw))


def test_sysctl_converged_and_drift() -> None:
    assert sysctl.Sysctl().plan(sysctl_facts()) == []
    drift = sysctl_facts(live=sysctl_live(**{"net.ipv4.ip_forward": "0"}))
    assert summaries(sysctl.Sysctl(), drift) == [
        "apply with sysctl (net.ipv4.ip_forward is 0, want 1)"]


def test_sysctl_neutralises_what_ufw_would_reapply_at_boot(tmp_path: Path) -> None:
    (change,) = sysctl.Sysctl().plan(sysctl_facts(ufw=UFW_SYSCTL_DEBIAN))
    assert change.summary == ("comment out net/ipv4/conf/all/log_martians in"
                              " /etc/ufw/sysctl.conf (ufw re-applies it)")
    copy = tmp_path / "sysctl.conf"
    copy.write_text(UFW_SYSCTL_DEBIAN)
    result = LocalTarget().run(change.script.replace(sysctl.UFW_SYSCTL, str(copy)))
    assert result.ok, result.stderr
    assert copy.read_text() == UFW_SYSCTL_FIXED  # the real sed, on a copy
    assert sysctl.ufw_conflicts(copy.read_text()) == []


def test_sysctl_skips_keys_the_kernel_lacks_and_keeps_forwarding() -> None:
    f = sysctl_facts(live=sysctl_live(**{"kernel.yama.ptrace_scope": "<absent>"}), content="")
    changes = sysctl.Sysctl().plan(f)
    assert next(c.summary for c in changes) == "write /etc/sysctl.d/99-zz-stack-hardening.conf"
    text = sysctl.config({k for k, _, _ in sysctl.SETTINGS} - {"kernel.yama.ptrace_scope"})
    assert "ptrace_scope" not in text and "\nnet.ipv4.ip_forward = 1\n" in text
    assert "vm.overcommit_memory = 1" in text and "kernel.panic = 10" in text


def test_updates() -> None:
    pol = updates.UpdatePolicy(True, False, "04:00")
    ok = facts(t=(updates._TIMERS, "enabled\nenabled\n--\nactive\nactive\n"),
               p=(updates._PERIODIC, pol.periodic()), q=(updates._POLICY, pol.policy()))
    assert updates.Updates(pol).plan(ok) == []
    fresh = facts(t=(updates._TIMERS, "enabled\ndisabled\n--\nactive\ninactive\n"),
                  p=(updates._PERIODIC, "", 1), q=(updates._POLICY, "", 1))
    assert summaries(updates.Updates(pol), fresh) == [
        "write /etc/apt/apt.conf.d/20auto-upgrades",
        "write /etc/apt/apt.conf.d/52stack-unattended-upgrades",
        "enable apt-daily-upgrade.timer"]
    assert 'APT::Periodic::Unattended-Upgrade "1";' in pol.periodic()


# preflight --------------------------------------------------------------------------

def test_preflight_refuses_strangers_and_unsupported_systems() -> None:
    ok = facts(o=(OS_RELEASE, DEBIAN))
    assert preflight.Preflight("h", "203.0.113.10", ["203.0.113.0/24"]).plan(ok) == []
    with pytest.raises(UserError, match=r"h sees you as 198.51.100.7, which is not in operators"
                                        r".*add 198.51.100.7/32"):
        preflight.Preflight("h", "198.51.100.7", ["203.0.113.0/24"]).plan(ok)
    centos = facts(o=(OS_RELEASE, 'ID="centos"\nVERSION_ID="7"\nPRETTY_NAME="CentOS 7"\n'))
    with pytest.raises(UserError, match=r"runs CentOS 7: host\.harden supports Debian 12"):
        preflight.Preflight("h", "203.0.113.10", ["203.0.113.0/24"]).plan(centos)


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


# sshd port: one source for sshd, firewall and jail -----------------------------------

def test_sshd_moving_port_listens_on_both_until_the_old_is_closed() -> None:
    moving = sshd.Sshd((2222, 22))
    changes = moving.plan(sshd_facts())
    assert [c.summary for c in changes] == [
        "snapshot /etc/ssh (restored if sshd -t fails)",
        "write /etc/ssh/sshd_config.d/00-stack-hardening.conf",
        "check with sshd -t, reload ssh"]
    assert sshd.drop_in(set(sshd.KEX), (2222, 22)).splitlines()[2:4] == ["Port 2222", "Port 22"]
    listening = sshd_facts(ports=(2222, 22), eff=effective(port="22 2222"))
    assert moving.plan(listening) == []
    # after the reconnect on 2222: only 2222 is wanted, 22 goes
    assert summaries(sshd.Sshd((2222,)), listening)[1] == (
        "write /etc/ssh/sshd_config.d/00-stack-hardening.conf")
    assert sshd.Sshd((2222,)).verify(listening)[0] == "sshd -T: port is '22 2222', want '2222'"


def test_sshd_port_lines_elsewhere_are_neutralised() -> None:
    got = summaries(sshd.Sshd(), sshd_facts(main_ports="1"))
    assert "comment out Port in /etc/ssh/sshd_config (the port is" \
           " /etc/ssh/sshd_config.d/00-stack-hardening.conf's)" in got
    assert "Port" in sshd._NEUTRALISE  # other drop-ins' Port lines too


def test_sshd_unknown_session_port_keeps_the_ports_sshd_listens_on() -> None:
    step = sshd.Sshd((2222,), live_port_known=False)
    f = sshd_facts(eff=effective(port="22"), ports=(2222, 22))
    assert step.wanted_ports(f) == (2222, 22)  # 22 is kept: it may be this session's
    assert summaries(step, f)[1] == "sshd differs (sshd -T: port is '22', want '22 2222'):" \
                                    " reload"


def test_sshd_socket_activation_must_listen_on_the_wanted_ports() -> None:
    socket = "active\n0.0.0.0:22 (Stream) [::]:22 (Stream)\n"
    assert sshd.Sshd().plan(sshd_facts(socket=socket)) == []
    stale = "active\n0.0.0.0:22 (Stream) [::]:22 (Stream)\n"
    f = sshd_facts(socket=stale, ports=(2222,), eff=effective(port="2222"))
    assert sshd.Sshd((2222,)).verify(f)[0] == "ssh.socket listens on 22, want 2222"
    script = "".join(c.script for c in sshd.Sshd((2222,)).plan(f))
    assert "systemctl daemon-reload && systemctl restart ssh.socket" in script


def test_one_port_source_for_sshd_firewall_and_jail() -> None:
    from tasks.harden import steps as host_steps
    from tasks.model.fields import build
    from tasks.model.model import Inventory

    inv, errors = build(Inventory, {
        "domain": "example.com", "acme_email": "ops@example.com",
        "operators": ["198.51.100.7/32"],
        "hosts": [{"name": "a", "address": "203.0.113.20", "user": "admin", "key_file": "k"}],
        "host": {"ssh": {"port": 2200}}})
    assert errors == []
    plan = host_steps(inv, inv.hosts[0], "198.51.100.7", 22)
    by_id = {s.id: s for s in plan}
    assert [s.id for s in plan] == ["preflight", "packages", "sshd-keys", "sshd", "firewall",
                                    "fail2ban", "sysctl", "updates"]
    assert by_id["sshd"].ports == (2200, 22)  # type: ignore[attr-defined]
    assert by_id["fail2ban"].policy.ssh_ports == (2200, 22)  # type: ignore[attr-defined]
    assert "port = 2200,22" in by_id["fail2ban"].policy.config()  # type: ignore[attr-defined]
    rules = by_id["firewall"].policy.rules()  # type: ignore[attr-defined]
    assert rules[:4] == ["allow from 198.51.100.7 to any port 2200 proto tcp",
                         "allow from 198.51.100.7 to any port 22 proto tcp",
                         "limit 2200/tcp", "limit 22/tcp"]
    moved = {s.id: s for s in host_steps(inv, inv.hosts[0], "198.51.100.7", 2200)}
    assert moved["sshd"].ports == (2200,)  # type: ignore[attr-defined]
    assert "port = 2200\n" in moved["fail2ban"].policy.config()  # type: ignore[attr-defined]


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
