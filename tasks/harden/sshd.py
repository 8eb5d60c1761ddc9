"""sshd: key-only, no root, modern algorithms; validated before reload, verified after.

The drop-in is named ``00-...`` so that it comes first among the included files: for
most keywords sshd keeps the *first* value it reads, so a later drop-in (cloud-init's
``50-cloud-init.conf`` re-enabling passwords, say) cannot undo it; those lines are
commented out as well, so that nobody reading them is misled. The algorithm lists pass
ssh-audit's "Hardened Debian 12 (version 3)" policy; algorithms the installed OpenSSH
does not know are left out rather than breaking ``sshd -t``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.engine.facts import Fact, Facts, Raw, file_fact, lines, text
from tasks.engine.shell import q, write_file
from tasks.engine.step import Change, Step

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

# Keywords whose effective value we own: other drop-ins setting them are neutralised.
MANAGED = {
    "permitrootlogin": "no",
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "pubkeyauthentication": "yes",
    "permitemptypasswords": "no",
    "authenticationmethods": "publickey",
    "x11forwarding": "no",
    "maxauthtries": "3",
    "logingracetime": "30",
}
_SPELLING = {
    "permitrootlogin": "PermitRootLogin", "passwordauthentication": "PasswordAuthentication",
    "kbdinteractiveauthentication": "KbdInteractiveAuthentication",
    "pubkeyauthentication": "PubkeyAuthentication",
    "permitemptypasswords": "PermitEmptyPasswords",
    "authenticationmethods": "AuthenticationMethods", "x11forwarding": "X11Forwarding",
    "maxauthtries": "MaxAuthTries", "logingracetime": "LoginGraceTime",
}
_NEUTRALISE = [*_SPELLING.values(), "ChallengeResponseAuthentication", "KexAlgorithms",
               "Ciphers", "MACs", "HostKeyAlgorithms"]


def _effective(raw: Raw) -> dict[str, str]:
    """``sshd -T`` output: lower-case keyword -> value (first occurrence)."""
    out: dict[str, str] = {}
    for line in lines(raw):
        key, _, value = line.partition(" ")
        out.setdefault(key.lower(), value.strip())
    return out


def _rsa_bits(raw: Raw) -> int:
    """``ssh-keygen -l -f key.pub`` prints ``3072 SHA256:... comment (RSA)``."""
    first = text(raw).split()
    return int(first[0]) if first and first[0].isdigit() else 0


def _neutralise_targets(raw: Raw) -> list[str]:
    """``grep -l`` output: other drop-ins that set keywords we manage."""
    return [line for line in lines(raw) if line != DROP_IN]


EFFECTIVE = Fact("sshd:effective", "sshd -T", _effective)
SUPPORTED_KEX = Fact("ssh:kex", "ssh -Q kex", lambda raw: set(lines(raw)))
DROP_IN_CONTENT = file_fact(DROP_IN)
HAS_INCLUDE = Fact("sshd:include",
                   "grep -qiE '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\\.d/\\*\\.conf'"
                   " /etc/ssh/sshd_config", lambda raw: raw.rc == 0)
RSA_KEY_BITS = Fact("sshd:rsa-bits", "ssh-keygen -l -f /etc/ssh/ssh_host_rsa_key.pub", _rsa_bits)
WEAK_MODULI = Fact("sshd:weak-moduli",
                   f"awk '$1 !~ /^#/ && NF >= 7 && $5 < {MIN_MODULUS}' /etc/ssh/moduli | wc -l",
                   lambda raw: int(text(raw).strip() or 0))
_pattern = "|".join(_NEUTRALISE)
OTHER_DROP_INS = Fact(
    "sshd:other-drop-ins",
    f"grep -liE '^[[:space:]]*({_pattern})[[:space:]]' {DROP_IN_DIR}/*.conf",
    _neutralise_targets)


def drop_in(supported_kex: set[str]) -> str:
    kex = [k for k in KEX if k in supported_kex] or KEX[2:]
    settings = [f"{_SPELLING[k]} {v}" for k, v in MANAGED.items()]
    return "\n".join([
        "# Managed by k3s-vps-platform (inv host.harden): local edits are overwritten.",
        "# Key-only logins, no root, modern algorithms (ssh-audit: Hardened Debian 12 v3).",
        *settings,
        *(f"HostKey {k}" for k in HOST_KEYS),
        f"HostKeyAlgorithms {','.join(HOST_KEY_ALGORITHMS)}",
        f"KexAlgorithms {','.join(kex)}",
        f"Ciphers {','.join(CIPHERS)}",
        f"MACs {','.join(MACS)}",
        "",
    ])


def expected_effective(supported_kex: set[str]) -> dict[str, str]:
    """What ``sshd -T`` must report once the drop-in is active."""
    kex = [k for k in KEX if k in supported_kex] or KEX[2:]
    return {
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
    'rm -rf "$B"\n'
)


class Sshd(Step):
    name = "sshd: key-only, hardened algorithms"
    guarded = True

    def facts(self) -> Sequence[Fact[Any]]:
        return [EFFECTIVE, SUPPORTED_KEX, DROP_IN_CONTENT, HAS_INCLUDE, RSA_KEY_BITS,
                WEAK_MODULI, OTHER_DROP_INS]

    def plan(self, facts: Facts) -> list[Change]:
        kex = facts[SUPPORTED_KEX]
        changes: list[Change] = []
        wanted = drop_in(kex)
        if facts[DROP_IN_CONTENT] != wanted:
            changes.append(Change(f"write {DROP_IN}", f"mkdir -p {DROP_IN_DIR}\n"
                                  + write_file(DROP_IN, wanted, mode="0644")))
        for path in facts[OTHER_DROP_INS]:
            changes.append(Change(
                f"neutralise {path} (comment out settings we manage)",
                f"sed -i -E 's/^[[:space:]]*({_pattern})[[:space:]]/"
                f"# disabled by host.harden: &/I' {q(path)}\n"))
        if not facts[HAS_INCLUDE]:
            changes.append(Change(f"include {DROP_IN_DIR}/*.conf from /etc/ssh/sshd_config",
                                  f"sed -i '1i {INCLUDE_LINE}' /etc/ssh/sshd_config\n"))
        if facts[RSA_KEY_BITS] < RSA_BITS:
            changes.append(Change(
                f"regenerate the RSA host key with {RSA_BITS} bits"
                f" (was {facts[RSA_KEY_BITS] or 'missing'})",
                "rm -f /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub\n"
                f"ssh-keygen -q -t rsa -b {RSA_BITS} -N '' -f /etc/ssh/ssh_host_rsa_key\n"))
        if facts[WEAK_MODULI]:
            changes.append(Change(
                f"drop {facts[WEAK_MODULI]} Diffie-Hellman groups smaller than 3072 bits",
                f"awk '$1 ~ /^#/ || $5 >= {MIN_MODULUS}' /etc/ssh/moduli >/etc/ssh/moduli.tmp\n"
                "mv -f /etc/ssh/moduli.tmp /etc/ssh/moduli\n"))
        if not changes:
            changes += self._effective_drift(facts)
        if changes:
            return [Change("snapshot /etc/ssh (restored if sshd -t fails)", _SNAPSHOT),
                    *changes, Change("check with sshd -t, reload ssh", _VALIDATE_RELOAD)]
        return []

    def _effective_drift(self, facts: Facts) -> list[Change]:
        """Files are right but sshd -T disagrees: something overrides us; reload."""
        problems = self.problems(facts)
        return [Change(f"sshd -T differs ({problems[0]}): reload", "")] if problems else []

    def problems(self, facts: Facts) -> list[str]:
        effective = facts[EFFECTIVE]
        out = []
        for key, value in expected_effective(facts[SUPPORTED_KEX]).items():
            if effective.get(key) != value:
                out.append(f"{key} is {effective.get(key, 'unset')!r}, want {value!r}")
        return out

    def verify(self, facts: Facts) -> list[str]:
        return [f"sshd -T: {p}" for p in self.problems(facts)] + super().verify(facts)

