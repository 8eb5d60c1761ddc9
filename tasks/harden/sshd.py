"""sshd: key-only, no root, modern algorithms; validated before reload, verified after.

The drop-in is named ``00-...`` so that it comes first among the included files: for
most keywords sshd keeps the *first* value it reads, so a later drop-in (cloud-init's
``50-cloud-init.conf`` re-enabling passwords, say) cannot undo it; those lines are
commented out as well, so that nobody reading them is misled. The algorithm lists pass
ssh-audit's "Hardened Debian 12 (version 3)" policy; algorithms the installed OpenSSH
does not know are left out rather than breaking ``sshd -t``.

The listening port comes from the inventory (``host.ssh.port``). ``Port`` accumulates in
sshd (every line adds a port), so other files' ``Port`` lines are neutralised too. To
move the port without a lockout, sshd listens on the new port *and* the one this session
uses; the run confirms a fresh login on the new port, reconnects there, and only then a
second pass closes the old one. Where sshd is socket-activated (Ubuntu 24.04's
ssh.socket), systemd's generator takes the ports from the same configuration.

The slow, access-neutral work (a 4096-bit host key, filtering the DH moduli) is its own
step, :class:`SshdKeys`, run before the dead-man switch is armed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, file_fact, lines, text
from tasks.engine.shell import progress, q, write_file
from tasks.engine.step import Change, Step
from tasks.harden.facts import modes_fact

DROP_IN_DIR = "/etc/ssh/sshd_config.d"
DROP_IN = f"{DROP_IN_DIR}/00-stack-hardening.conf"
INCLUDE_LINE = "Include /etc/ssh/sshd_config.d/*.conf"
RSA_BITS = 4096
MIN_MODULUS = 3071  # /etc/ssh/moduli column 5 is size-1: keep >= 3072-bit groups

KEX = ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
       "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512",
       "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256"]
CIPHERS = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes256-ctr",
           "aes192-ctr", "aes128-gcm@openssh.com", "aes128-ctr"]
MACS = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
        "umac-128-etm@openssh.com"]
HOST_KEY_ALGORITHMS = ["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"]
HOST_KEYS = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"]

# The API port kubectl reaches through the SSH tunnel (tasks/cluster/access.py opens a
# direct-tcpip channel to 127.0.0.1 on it): the only forwarding sshd allows.
API_PORT = 6443
PERMIT_OPEN = f"127.0.0.1:{API_PORT} localhost:{API_PORT}"

# Keywords whose effective value we own, as spelled in the drop-in, with the value
# ``sshd -T`` must print. Other drop-ins setting them are neutralised.
SETTINGS: list[tuple[str, str]] = [
    # who may log in, and how
    ("PermitRootLogin", "no"),
    ("PasswordAuthentication", "no"),
    ("KbdInteractiveAuthentication", "no"),
    ("PubkeyAuthentication", "yes"),
    ("PermitEmptyPasswords", "no"),
    ("AuthenticationMethods", "publickey"),
    ("HostbasedAuthentication", "no"),
    ("IgnoreRhosts", "yes"),
    ("IgnoreUserKnownHosts", "yes"),
    ("KerberosAuthentication", "no"),
    ("KerberosOrLocalPasswd", "no"),
    ("GSSAPIAuthentication", "no"),
    ("StrictModes", "yes"),
    ("PermitUserEnvironment", "no"),
    # brute force and resource limits
    ("MaxAuthTries", "2"),
    ("LoginGraceTime", "30"),
    ("MaxStartups", "10:30:100"),
    ("MaxSessions", "10"),
    # dead peers: probes inside the encrypted channel, not spoofable TCP keepalives
    ("ClientAliveInterval", "300"),
    ("ClientAliveCountMax", "3"),
    ("TCPKeepAlive", "no"),
    # forwarding: only local forwarding, only to the API on this host
    ("AllowTcpForwarding", "local"),
    ("PermitOpen", PERMIT_OPEN),
    ("AllowAgentForwarding", "no"),
    ("AllowStreamLocalForwarding", "no"),
    ("GatewayPorts", "no"),
    ("PermitTunnel", "no"),
    ("X11Forwarding", "no"),
    # what the session shows and logs
    ("PrintLastLog", "no"),
    ("Compression", "no"),
    ("UseDNS", "no"),
    ("LogLevel", "VERBOSE"),
]
MANAGED = {k.lower(): v for k, v in SETTINGS}
# Debian's own keyword (the OS name in the version string): sshd -T does not print it.
FILE_ONLY: list[tuple[str, str]] = [("DebianBanner", "no")]
_NEUTRALISE = [*(k for k, _ in SETTINGS), *(k for k, _ in FILE_ONLY),
               "ChallengeResponseAuthentication", "KexAlgorithms", "Ciphers", "MACs",
               "HostKeyAlgorithms", "Port"]
MAIN_CONFIG = "/etc/ssh/sshd_config"


def _effective(raw: Raw) -> dict[str, str]:
    """``sshd -T`` output: lower-case keyword -> value (first occurrence); ``port``: every
    port, space-separated, sorted (sshd prints one ``port`` line per listening port)."""
    out: dict[str, str] = {}
    ports: list[int] = []
    for line in lines(raw):
        key, _, value = line.partition(" ")
        if key.lower() == "port" and value.strip().isdigit():
            ports.append(int(value))
        out.setdefault(key.lower(), value.strip())
    if ports:
        out["port"] = " ".join(str(p) for p in sorted(set(ports)))
    return out


def _socket(raw: Raw) -> tuple[int, ...] | None:
    """ssh.socket's TCP ports when it is active (socket activation), else None."""
    state, _, listen = raw.stdout.partition("\n")
    if state.strip() != "active":
        return None
    return tuple(sorted({int(p) for p in re.findall(r":(\d+) \(Stream\)", listen)}))


def _rsa_bits(raw: Raw) -> int:
    """``ssh-keygen -l -f key.pub`` prints ``3072 SHA256:... comment (RSA)``."""
    first = text(raw).split()
    return int(first[0]) if first and first[0].isdigit() else 0


def other_drop_ins(key: str, folder: str, ours: str, keywords: Sequence[str]) -> Fact[list[str]]:
    """The drop-ins in ``folder`` other than ``ours`` that set one of ``keywords``."""
    pattern = "|".join(keywords)
    return Fact(key, f"grep -liE '^[[:space:]]*({pattern})[[:space:]]' {folder}/*.conf",
                lambda raw: [line for line in lines(raw) if line != ours])


def neutralise(path: str, keywords: Sequence[str]) -> Change:
    """Comment out ``keywords`` in another drop-in, so nobody reading it is misled."""
    return Change(f"neutralise {path} (comment out settings we manage)",
                  f"sed -i -E 's/^[[:space:]]*({'|'.join(keywords)})[[:space:]]/"
                  f"# disabled by host.harden: &/I' {q(path)}\n")


EFFECTIVE = Fact("sshd:effective", "sshd -T", _effective)
SOCKET = Fact("ssh:socket", "systemctl is-active ssh.socket; systemctl show -p Listen --value"
              " ssh.socket", _socket)
MAIN_PORT_LINES = Fact("sshd:main-port-lines",
                       f"grep -ciE '^[[:space:]]*Port[[:space:]]' {MAIN_CONFIG}",
                       lambda raw: int(raw.stdout.strip() or 0))
SUPPORTED_KEX = Fact("ssh:kex", "ssh -Q kex", lambda raw: set(lines(raw)))
DROP_IN_CONTENT = file_fact(DROP_IN)
HAS_INCLUDE = Fact("sshd:include",
                   "grep -qiE '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\\.d/\\*\\.conf'"
                   " /etc/ssh/sshd_config", lambda raw: raw.rc == 0)
RSA_KEY_BITS = Fact("sshd:rsa-bits", "ssh-keygen -l -f /etc/ssh/ssh_host_rsa_key.pub", _rsa_bits)
WEAK_MODULI = Fact("sshd:weak-moduli",
                   f"awk '$1 !~ /^#/ && NF >= 7 && $5 < {MIN_MODULUS}' /etc/ssh/moduli | wc -l",
                   lambda raw: int(text(raw).strip() or 0))
CONFIG_MODE = "600"  # sshd's files hold the access policy: root reads them, nobody else


MODES = modes_fact("sshd:modes", MAIN_CONFIG, f"{DROP_IN_DIR}/*.conf")
OTHER_DROP_INS = other_drop_ins("sshd:other-drop-ins", DROP_IN_DIR, DROP_IN, _NEUTRALISE)


def mode_problems(modes: dict[str, str]) -> list[str]:
    """sshd's files readable or writable by anyone but root."""
    return [path for path, got in modes.items() if got != f"{CONFIG_MODE} root:root"]


def drop_in(supported_kex: set[str], ports: Sequence[int] = (22,)) -> str:
    kex = [k for k in KEX if k in supported_kex] or KEX[2:]
    settings = [f"{k} {v}" for k, v in [*SETTINGS, *FILE_ONLY]]
    return "\n".join([
        "# Managed by k3s-vps-platform (inv host.harden): local edits are overwritten.",
        "# Key-only logins, no root, modern algorithms (ssh-audit: Hardened Debian 12 v3),",
        f"# forwarding only to the Kubernetes API ({PERMIT_OPEN}).",
        *(f"Port {p}" for p in ports),
        *settings,
        *(f"HostKey {k}" for k in HOST_KEYS),
        f"HostKeyAlgorithms {','.join(HOST_KEY_ALGORITHMS)}",
        f"KexAlgorithms {','.join(kex)}",
        f"Ciphers {','.join(CIPHERS)}",
        f"MACs {','.join(MACS)}",
        "",
    ])


def expected_effective(supported_kex: set[str], ports: Sequence[int] = (22,)
                       ) -> dict[str, str]:
    """What ``sshd -T`` must report once the drop-in is active."""
    kex = [k for k in KEX if k in supported_kex] or KEX[2:]
    return {
        "port": " ".join(str(p) for p in sorted(set(ports))),
        **MANAGED,
        "kexalgorithms": ",".join(kex),
        "ciphers": ",".join(CIPHERS),
        "macs": ",".join(MACS),
        "hostkeyalgorithms": ",".join(HOST_KEY_ALGORITHMS),
    }


_SNAPSHOT = ('B=$(mktemp -d /run/stack-sshd.XXXXXX)\n'
             'cp -a /etc/ssh/. "$B/"\n')
_VALIDATE_RELOAD = (
    'if ! out=$(sshd -t 2>&1); then\n'
    '  rm -rf /etc/ssh/sshd_config.d && cp -a "$B/." /etc/ssh/ && rm -rf "$B"\n'
    '  echo "sshd -t rejected the new configuration (restored the previous one): $out" >&2\n'
    '  exit 1\n'
    'fi\n'
    'systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null'
    ' || systemctl restart ssh\n'
    '# Socket activation (Ubuntu): the generator turns the ports into ssh.socket listeners.\n'
    'if systemctl is-active --quiet ssh.socket; then\n'
    '  systemctl daemon-reload && systemctl restart ssh.socket\n'
    'fi\n'
    'rm -rf "$B"\n'
)

_NEW_KEY = "/etc/ssh/ssh_host_rsa_key.stack-new"


class SshdKeys(Step):
    """A 4096-bit RSA host key and no DH group under 3072 bits: slow on a small VPS (minutes
    under emulation), and neutral for access, so it runs before the dead-man switch."""

    id = "sshd-keys"
    name = "sshd: 4096-bit host key, strong DH groups"

    def facts(self) -> Sequence[Fact[Any]]:
        return [RSA_KEY_BITS, WEAK_MODULI]

    def plan(self, facts: Facts) -> list[Change]:
        changes = []
        if facts[RSA_KEY_BITS] < RSA_BITS:
            changes.append(Change(
                f"regenerate the RSA host key with {RSA_BITS} bits"
                f" (was {facts[RSA_KEY_BITS] or 'missing'})",
                progress(f"generating a {RSA_BITS}-bit RSA host key (slow on a small VPS)")
                + f"rm -f {_NEW_KEY} {_NEW_KEY}.pub\n"
                f"ssh-keygen -q -t rsa -b {RSA_BITS} -N '' -f {_NEW_KEY}\n"
                f"mv -f {_NEW_KEY}.pub /etc/ssh/ssh_host_rsa_key.pub\n"
                f"mv -f {_NEW_KEY} /etc/ssh/ssh_host_rsa_key\n"))
        if facts[WEAK_MODULI]:
            changes.append(Change(
                f"drop {facts[WEAK_MODULI]} Diffie-Hellman groups smaller than 3072 bits",
                f"awk '$1 ~ /^#/ || $5 >= {MIN_MODULUS}' /etc/ssh/moduli >/etc/ssh/moduli.tmp\n"
                "mv -f /etc/ssh/moduli.tmp /etc/ssh/moduli\n"))
        return changes


class Sshd(Step):
    """The sshd configuration: listening ports, authentication, algorithms.

    ``ports`` are the ports sshd must listen on: the inventory's, then the one this session
    came in on when it differs (kept until a login on the new port is confirmed). With no
    session port known, the ports sshd listens on now are kept as well.
    """

    id = "sshd"
    name = "sshd: key-only, hardened algorithms"
    guarded = True

    def __init__(self, ports: Sequence[int] = (22,), *, live_port_known: bool = True) -> None:
        self.ports = tuple(dict.fromkeys(ports))
        self.live_port_known = live_port_known

    def facts(self) -> Sequence[Fact[Any]]:
        return [EFFECTIVE, SUPPORTED_KEX, DROP_IN_CONTENT, HAS_INCLUDE, OTHER_DROP_INS,
                MAIN_PORT_LINES, SOCKET, MODES]

    def wanted_ports(self, facts: Facts) -> tuple[int, ...]:
        if self.live_port_known:
            return self.ports
        now = [int(p) for p in facts[EFFECTIVE].get("port", "").split()]
        return tuple(dict.fromkeys([*self.ports, *now]))

    def plan(self, facts: Facts) -> list[Change]:
        kex = facts[SUPPORTED_KEX]
        ports = self.wanted_ports(facts)
        changes: list[Change] = []
        wanted = drop_in(kex, ports)
        rewrite = facts[DROP_IN_CONTENT] != wanted
        if rewrite:
            changes.append(Change(f"write {DROP_IN}", f"mkdir -p {DROP_IN_DIR}\n"
                                  + write_file(DROP_IN, wanted, mode=f"0{CONFIG_MODE}")))
        changes += [neutralise(path, _NEUTRALISE) for path in facts[OTHER_DROP_INS]]
        if facts[MAIN_PORT_LINES]:
            changes.append(Change(
                f"comment out Port in {MAIN_CONFIG} (the port is {DROP_IN}'s)",
                f"sed -i -E 's/^[[:space:]]*Port[[:space:]]/# disabled by host.harden: &/I'"
                f" {MAIN_CONFIG}\n"))
        if not facts[HAS_INCLUDE]:
            changes.append(Change(f"include {DROP_IN_DIR}/*.conf from {MAIN_CONFIG}",
                                  f"sed -i '1i {INCLUDE_LINE}' {MAIN_CONFIG}\n"))
        loose = [p for p in mode_problems(facts[MODES]) if not (p == DROP_IN and rewrite)]
        if loose:
            changes.append(Change(
                f"chmod 0{CONFIG_MODE}, chown root:root {', '.join(loose)}",
                f"chmod 0{CONFIG_MODE} {' '.join(q(p) for p in loose)}\n"
                f"chown root:root {' '.join(q(p) for p in loose)}\n"))
        if not changes:
            changes += self._effective_drift(facts)
        if changes:
            return [Change("snapshot /etc/ssh (restored if sshd -t fails)", _SNAPSHOT),
                    *changes, Change("check with sshd -t, reload ssh", _VALIDATE_RELOAD)]
        return []

    def _effective_drift(self, facts: Facts) -> list[Change]:
        """Files are right but sshd -T (or ssh.socket) disagrees: reload."""
        problems = self.problems(facts)
        return [Change(f"sshd differs ({problems[0]}): reload", "")] if problems else []

    def problems(self, facts: Facts) -> list[str]:
        effective = facts[EFFECTIVE]
        ports = self.wanted_ports(facts)
        out = [f"sshd -T: {key} is {effective.get(key, 'unset')!r}, want {value!r}"
               for key, value in expected_effective(facts[SUPPORTED_KEX], ports).items()
               if effective.get(key) != value]
        out += [f"{path} is {facts[MODES][path]}, want {CONFIG_MODE} root:root"
                for path in mode_problems(facts[MODES])]
        listening = facts[SOCKET]
        if listening is not None and listening != tuple(sorted(ports)):
            out.append(f"ssh.socket listens on {', '.join(map(str, listening)) or 'nothing'},"
                       f" want {', '.join(map(str, sorted(ports)))}")
        return out

    def verify(self, facts: Facts) -> list[str]:
        return self.problems(facts) + super().verify(facts)
