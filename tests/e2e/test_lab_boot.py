"""The lab VM boots like a fresh Debian 12 VPS: its own identity, SSH, sudo, the mirror."""

from __future__ import annotations

from typing import TYPE_CHECKING

import paramiko
import pytest

if TYPE_CHECKING:  # the fixture's type, for readers and editors (conftest is not a module)
    from tests.e2e.conftest import LabVm

pytestmark = pytest.mark.e2e


def test_ssh_as_admin_with_the_key(lab_vm: LabVm) -> None:
    assert lab_vm.run("id -un").stdout.strip() == "admin"
    assert lab_vm.run("hostname").stdout.strip() == lab_vm.name


def test_passwordless_sudo(lab_vm: LabVm) -> None:
    assert lab_vm.run("sudo -n id -u").stdout.strip() == "0"


def test_machine_id_is_the_vms_own(lab_vm: LabVm) -> None:
    machine_id = lab_vm.run("cat /etc/machine-id").stdout.strip()
    assert machine_id == lab_vm.machine_id
    assert machine_id != lab_vm.base_machine_id
    assert len(lab_vm.base_machine_id) == 32


@pytest.mark.parametrize("key_type", ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"])
def test_host_keys_match_known_hosts(lab_vm: LabVm, key_type: str) -> None:
    known = paramiko.HostKeys(str(lab_vm.known_hosts))
    entry = known.lookup(f"[{lab_vm.host}]:{lab_vm.port}")
    assert entry is not None
    transport = paramiko.Transport((lab_vm.host, lab_vm.port))
    try:
        transport.get_security_options().key_types = [key_type]
        transport.start_client(timeout=30)
        key = transport.get_remote_server_key()
    finally:
        transport.close()
    assert known.check(f"[{lab_vm.host}]:{lab_vm.port}", key), key.get_name()


def test_host_keys_are_fresh_and_debian_like(lab_vm: LabVm) -> None:
    out = lab_vm.run("for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $f; done").stdout
    bits = {line.split()[-1]: line.split()[0] for line in out.splitlines()}
    assert bits == {"(RSA)": "3072", "(ECDSA)": "256", "(ED25519)": "256"}
    assert f"root@{lab_vm.name}" in out


def test_password_login_is_on_like_a_fresh_vps(lab_vm: LabVm) -> None:
    client = lab_vm.connect(password=lab_vm.password)
    client.close()
    with pytest.raises(paramiko.AuthenticationException):
        lab_vm.connect(password=lab_vm.password + "-wrong")
    out = lab_vm.run("sudo -n sshd -T").stdout
    assert "passwordauthentication yes" in out


def test_root_has_a_password(lab_vm: LabVm) -> None:
    assert lab_vm.run("sudo -n passwd -S root").stdout.split()[1] == "P"


def test_hardening_packages_are_not_preinstalled(lab_vm: LabVm) -> None:
    for package in ("ufw", "fail2ban", "python3-systemd", "unattended-upgrades"):
        ran = lab_vm.run(f"dpkg-query -W -f='${{Status}}' {package}", check=False)
        assert "install ok installed" not in ran.stdout, package


def test_guest_reaches_the_debian_mirror(lab_vm: LabVm) -> None:
    ran = lab_vm.run("sudo -n apt-get update", timeout=600)
    assert "deb.debian.org/debian bookworm" in ran.stdout
    assert "bookworm-security" in ran.stdout
