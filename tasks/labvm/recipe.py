"""What the base image is made of, and the hash that keys its cache.

The image looks like a typical fresh Debian 12 VPS: Debian's default sshd_config with
the drop-in cloud-init writes (password logins allowed), root with a password, host keys
as the package makes them (RSA 3072, ECDSA, Ed25519), systemd-networkd with DHCP. The
hardening task must install ufw, fail2ban, python3-systemd and unattended-upgrades
itself: they are deliberately absent.

Changing anything here changes :func:`recipe_hash`, so the next ``lab.up`` rebuilds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

# Bump when the build steps in image.py change in a way the fields below do not show.
RECIPE_VERSION = 2

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
PACKAGES = (
    "systemd-sysv", "openssh-server", "sudo", "linux-image-amd64", "ca-certificates",
    "iproute2",
    # As on Debian's cloud images: logind (power button: clean lab.down), hostnamectl...
    "dbus",
)
# Never in the base image: the hardening task installs them (tests rely on that).
LEFT_TO_HARDENING = ("ufw", "fail2ban", "python3-systemd", "unattended-upgrades")
IMAGE_SIZE = "16G"  # virtual size of the root filesystem (qcow2: only used blocks count)

FW_CFG_SEED = "opt/stack/seed.tar"  # qemu fw_cfg file name the guest reads at first boot
SEED_UNIT = "stack-lab-seed.service"
ENABLE_UNITS = ("systemd-networkd.service", SEED_UNIT)

SOURCES_LIST = f"""\
deb {MIRROR} {SUITE} main
deb {MIRROR} {SUITE}-updates main
deb {SECURITY_MIRROR} {SUITE}-security main
"""

NETWORK = """\
# The virtio NIC on qemu user networking: DHCP from qemu (10.0.2.15, gateway 10.0.2.2).
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
"""

# A small initrd (the few modules a qemu VM needs) boots much faster under TCG than
# Debian's MODULES=most one.
INITRAMFS_CONF = "MODULES=list\n"
INITRAMFS_MODULES = "virtio_pci\nvirtio_blk\nvirtio_net\next4\n"

# qemu user networking's DNS forwarder.
RESOLV_CONF = "nameserver 10.0.2.3\n"

FSTAB = "/dev/vda / ext4 errors=remount-ro 0 1\n"

HOSTS = """\
127.0.0.1\tlocalhost
127.0.1.1\tdebian
::1\tlocalhost ip6-localhost ip6-loopback
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""

# What cloud-init writes on most VPS images: password logins stay on.
CLOUD_INIT_SSHD = "PasswordAuthentication yes\n"

SEED_SCRIPT = f"""\
#!/bin/sh
# Applies this VM's identity and secrets, written by `inv lab.up` and passed by qemu
# as fw_cfg {FW_CFG_SEED}: host name, machine-id, SSH host keys, users and passwords.
set -eu
raw=/sys/firmware/qemu_fw_cfg/by_name/{FW_CFG_SEED}/raw
modprobe qemu_fw_cfg 2>/dev/null || true
n=0
while [ ! -r "$raw" ]; do
  n=$((n + 1))
  if [ "$n" -gt 100 ]; then echo "stack-lab-seed: no seed at $raw" >&2; exit 1; fi
  sleep 0.1
done
umask 077
# Not /tmp: systemd-tmpfiles empties it at boot, at the same time as this runs.
d=$(mktemp -d -p /run stack-lab-seed.XXXXXX)
trap 'rm -rf "$d"' EXIT
cat "$raw" >"$d/seed.tar"
tar -xf "$d/seed.tar" -C "$d" --no-same-owner
s="$d/seed"
name=$(cat "$s/hostname")
printf '%s\\n' "$name" >/etc/hostname
hostname "$name"
sed "s/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1\\t$name/" /etc/hosts >"$d/hosts"
install -m 0644 "$d/hosts" /etc/hosts
install -m 0444 "$s/machine-id" /etc/machine-id
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
  install -m 0444 "$s/machine-id" /var/lib/dbus/machine-id
fi
rm -f /etc/ssh/ssh_host_*
for t in ed25519 ecdsa rsa; do
  install -m 0600 "$s/ssh_host_${{t}}_key" /etc/ssh/
  install -m 0644 "$s/ssh_host_${{t}}_key.pub" /etc/ssh/
done
id admin >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo admin
printf 'admin:%s\\nroot:%s\\n' "$(cat "$s/admin.hash")" "$(cat "$s/root.hash")" | chpasswd -e
install -d -m 0700 -o admin -g admin /home/admin/.ssh
install -m 0600 -o admin -g admin "$s/authorized_keys" /home/admin/.ssh/authorized_keys
if [ "$(cat "$s/sudo")" = nopasswd ]; then
  printf 'admin ALL=(ALL) NOPASSWD:ALL\\n' >"$d/sudoers"
  install -m 0440 "$d/sudoers" /etc/sudoers.d/90-cloud-init-users
else
  rm -f /etc/sudoers.d/90-cloud-init-users
fi
if [ -f "$s/nodes.network" ]; then
  install -m 0644 "$s/nodes.network" /etc/systemd/network/10-nodes.network
fi
mkdir -p /var/lib/stack-lab
date -u +%FT%TZ >/var/lib/stack-lab/seeded
echo "stack-lab-seed: applied the seed of $name"
"""

SEED_SERVICE = """\
[Unit]
Description=Apply the lab VM's identity and secrets (qemu fw_cfg seed)
DefaultDependencies=no
After=local-fs.target systemd-modules-load.service systemd-tmpfiles-setup.service
Before=sysinit.target ssh.service systemd-networkd.service
Conflicts=shutdown.target
ConditionPathExists=!/var/lib/stack-lab/seeded

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/stack-lab-seed
StandardOutput=journal+console

[Install]
WantedBy=sysinit.target
"""


@dataclass(frozen=True)
class GuestFile:
    """A file written into the image: path inside the guest, content, octal mode."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the base image's content."""

    version: int = RECIPE_VERSION
    suite: str = SUITE
    mirror: str = MIRROR
    packages: tuple[str, ...] = PACKAGES
    image_size: str = IMAGE_SIZE
    enable_units: tuple[str, ...] = ENABLE_UNITS
    files: tuple[GuestFile, ...] = field(default_factory=lambda: (
        GuestFile("/etc/apt/sources.list", SOURCES_LIST),
        GuestFile("/etc/systemd/network/20-lab.network", NETWORK),
        GuestFile("/etc/resolv.conf", RESOLV_CONF),
        GuestFile("/etc/fstab", FSTAB),
        GuestFile("/etc/hostname", "debian\n"),
        GuestFile("/etc/hosts", HOSTS),
        GuestFile("/etc/ssh/sshd_config.d/50-cloud-init.conf", CLOUD_INIT_SSHD, 0o600),
        GuestFile("/etc/modules-load.d/qemu_fw_cfg.conf", "qemu_fw_cfg\n"),
        GuestFile("/etc/initramfs-tools/conf.d/lab.conf", INITRAMFS_CONF),
        GuestFile("/etc/initramfs-tools/modules", INITRAMFS_MODULES),
        GuestFile("/usr/local/sbin/stack-lab-seed", SEED_SCRIPT, 0o755),
        GuestFile(f"/etc/systemd/system/{SEED_UNIT}", SEED_SERVICE),
    ))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def recipe_hash(recipe: Recipe | None = None) -> str:
    """Short, stable hash of the recipe: the base image's cache key."""
    text = (recipe or Recipe()).to_json()
    return hashlib.sha256(text.encode()).hexdigest()[:16]
