"""The base image recipe: its hash keys the cache; the guest files it carries."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile

from tasks.labvm import recipe, seed


def test_hash_is_stable_and_short() -> None:
    assert recipe.recipe_hash() == recipe.recipe_hash(recipe.Recipe())
    assert len(recipe.recipe_hash()) == 16


def test_any_recipe_change_changes_the_hash() -> None:
    base = recipe.Recipe()
    changed = [
        dataclasses.replace(base, packages=(*base.packages, "vim")),
        dataclasses.replace(base, suite="trixie"),
        dataclasses.replace(base, version=base.version + 1),
        dataclasses.replace(base, image_size="32G"),
        dataclasses.replace(base, files=(*base.files[:-1], dataclasses.replace(
            base.files[-1], content=base.files[-1].content + "\n"))),
    ]
    hashes = {recipe.recipe_hash(r) for r in changed} | {recipe.recipe_hash(base)}
    assert len(hashes) == len(changed) + 1


def test_hardening_packages_are_not_preinstalled() -> None:
    assert not set(recipe.PACKAGES) & set(recipe.LEFT_TO_HARDENING)
    for name in ("systemd-sysv", "openssh-server", "sudo", "linux-image-amd64",
                 "ca-certificates", "iproute2"):
        assert name in recipe.PACKAGES


def test_guest_files_look_like_a_fresh_vps() -> None:
    files = {f.path: f for f in recipe.Recipe().files}
    sources = files["/etc/apt/sources.list"].content
    for suite in ("bookworm ", "bookworm-updates ", "bookworm-security "):
        assert suite in sources
    assert "http://deb.debian.org/debian-security bookworm-security" in sources
    assert files["/etc/ssh/sshd_config.d/50-cloud-init.conf"].content == (
        "PasswordAuthentication yes\n")
    assert "nameserver 10.0.2.3" in files["/etc/resolv.conf"].content
    assert "DHCP=ipv4" in files["/etc/systemd/network/20-lab.network"].content
    assert files["/usr/local/sbin/stack-lab-seed"].mode == 0o755


def test_seed_script_is_valid_sh_and_reads_fw_cfg() -> None:
    script = recipe.SEED_SCRIPT
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    assert "/sys/firmware/qemu_fw_cfg/by_name/opt/stack/seed.tar/raw" in script
    assert "chpasswd -e" in script
    unit = recipe.SEED_SERVICE
    assert "Before=sysinit.target ssh.service" in unit


def test_seed_archive_members_modes_and_owner() -> None:
    data = seed.seed_archive({"hostname": (b"lab1\n", 0o644), "admin.hash": (b"$6$x", 0o600)})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"seed/hostname", "seed/admin.hash"}
    assert members["seed/admin.hash"].mode == 0o600
    assert members["seed/hostname"].uid == 0
