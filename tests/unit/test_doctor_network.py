"""doctor's DNS check (injected resolver, recorded answers) and TCP checks (real sockets)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.doctor import network
from tasks.doctor.findings import Finding, Status
from tasks.model import load

NO_SUCH_HOST = socket.gaierror(-2, "Name or service not known")
POINT = "point the A (and AAAA, or none) record of api.example.com at 203.0.113.20"


def resolver(answers: dict[str, list[str] | OSError]) -> network.Resolver:
    """Recorded answers of getaddrinfo, name by name."""
    def resolve(name: str) -> list[str]:
        answer = answers.get(name, NO_SUCH_HOST)
        if isinstance(answer, OSError):
            raise answer
        return answer
    return resolve


@pytest.fixture
def listening() -> Iterator[tuple[int, int]]:
    """Two real listening ports on 127.0.0.1."""
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    try:
        yield socks[0].getsockname()[1], socks[1].getsockname()[1]
    finally:
        for s in socks:
            s.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_the_name_resolves_to_the_host() -> None:
    got = network.check_dns("api.example.com", ["203.0.113.20"],
                            resolver({"api.example.com": ["203.0.113.20"]}))
    assert got == Finding("dns api.example.com", Status.OK,
                          "api.example.com resolves to 203.0.113.20 (a host's address)")


def test_the_name_does_not_resolve() -> None:
    got = network.check_dns("api.example.com", ["203.0.113.20"], resolver({}))
    assert got == Finding("dns api.example.com", Status.FAIL, "api.example.com does not"
                          " resolve (Name or service not known); HTTP-01 needs it",
                          f"{POINT}, then wait for the TTL")


def test_the_name_points_elsewhere_or_also_elsewhere() -> None:
    elsewhere = resolver({"api.example.com": ["198.51.100.7"]})
    assert network.check_dns("api.example.com", ["203.0.113.20"], elsewhere) == Finding(
        "dns api.example.com", Status.FAIL, "api.example.com resolves to 198.51.100.7:"
        " 198.51.100.7 is not a host's address (203.0.113.20); HTTP-01 would reach another"
        " machine", f"{POINT}, remove the others, then wait for the TTL")
    stale_aaaa = resolver({"api.example.com": ["2001:db8::1", "203.0.113.20"]})
    assert network.check_dns("api.example.com", ["203.0.113.20"], stale_aaaa) == Finding(
        "dns api.example.com", Status.FAIL, "api.example.com resolves to 2001:db8::1,"
        " 203.0.113.20: 2001:db8::1 is not a host's address (203.0.113.20); HTTP-01 would"
        " reach another machine", f"{POINT}, remove the others, then wait for the TTL")


def test_hosts_without_a_public_address_cannot_tell() -> None:
    got = network.check_dns("api.example.com", ["127.0.0.1"],
                            resolver({"api.example.com": ["203.0.113.20"]}))
    assert got == Finding("dns api.example.com", Status.WARN, "api.example.com resolves to"
                          " 203.0.113.20; the hosts' addresses (127.0.0.1) are not public, so"
                          " which one it must be cannot be told", "make sure api.example.com"
                          " reaches this platform's port 80 from the Internet")


def test_names_and_addresses_come_from_the_inventory(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("domain: example.com\nacme_email: ops@example.com\n"
                    "operators: [203.0.113.10/32]\nhosts:\n"
                    "  - {name: vps1, address: 203.0.113.20, user: admin, key_file: k}\n"
                    "  - {name: vps2, address: vps2.example.com, user: admin, key_file: k,"
                    " role: agent}\n")
    inv = load(path, require_key_files=False).data
    assert network.public_names(inv) == ["api.example.com"]
    resolve = resolver({"vps2.example.com": ["203.0.113.21", "2001:db8::21"]})
    assert network.host_addresses(inv, resolve) == ["203.0.113.20", "203.0.113.21",
                                                    "2001:db8::21"]
    path.write_text(path.read_text() + "apps: {host: travel.example.org}\n")
    assert network.public_names(load(path, require_key_files=False).data) == [
        "travel.example.org"]


def test_the_system_resolver_answers_for_localhost() -> None:
    assert "127.0.0.1" in network.system_resolver("localhost")


def test_tcp_problem_on_a_listening_and_a_closed_port(listening: tuple[int, int]) -> None:
    assert network.tcp_problem("127.0.0.1", listening[0], 1.0) is None
    assert network.tcp_problem("127.0.0.1", closed_port(), 1.0) == "connection refused"


def test_web_ports_that_answer(listening: tuple[int, int]) -> None:
    a, b = listening
    assert network.check_web_ports("vps1", "127.0.0.1", None, 1.0, (a, b)) == Finding(
        "vps1 ports 80/443", Status.OK, f"127.0.0.1 answers on {a} and {b} (from here)")


def test_closed_web_ports_warn_until_k3s_runs(listening: tuple[int, int]) -> None:
    a, closed = listening[0], closed_port()
    said = f"127.0.0.1 {closed}: connection refused"
    later = ("run inv doctor again after inv k3s.install; if still closed, open 80/443 in the"
             " provider's firewall")
    assert network.check_web_ports("vps1", "127.0.0.1", False, 1.0, (a, closed)) == Finding(
        "vps1 ports 80/443", Status.WARN, f"{said} (from here); K3s is not running there"
        " yet, so this cannot tell yet", later)
    assert network.check_web_ports("vps1", "127.0.0.1", None, 1.0, (a, closed)) == Finding(
        "vps1 ports 80/443", Status.WARN, f"{said} (from here); whether K3s runs there is not"
        " known, so this cannot tell yet", later)
    assert network.check_web_ports("vps1", "127.0.0.1", True, 1.0, (a, closed)) == Finding(
        "vps1 ports 80/443", Status.FAIL, f"{said}, though K3s runs there (Traefik serves"
        " them)", "check UFW (inv host.harden), the provider's firewall, and Traefik (kubectl"
        " -n kube-system get svc traefik)")
