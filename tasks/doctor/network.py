"""Checks from this machine over the network: TCP ports, DNS for HTTP-01.

DNS: every public name the stack serves (the Ingress host, ``apps.host``, by default
``api.<domain>``; Grafana and Prometheus are internal, spec §12) must resolve, A and
AAAA alike, only to the hosts' addresses: Let's Encrypt's HTTP-01 challenge connects to
what the name resolves to. The resolver is injectable (tests); the default is
``socket.getaddrinfo``.

Ports 80/443: a TCP connect from here with a short timeout. It can only tell when
something answers; "refused" or "no answer" is a warning (Traefik comes with K3s),
unless the host said K3s is running, which makes it a failure.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

from tasks.doctor.findings import Finding, fail, ok, warn
from tasks.model.model import Inventory

Resolver = Callable[[str], list[str]]
PORT_TIMEOUT = 3.0


def system_resolver(name: str) -> list[str]:
    """Every address ``name`` resolves to (A and AAAA), in the resolver's order."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def tcp_problem(address: str, port: int, timeout: float) -> str | None:
    """None when ``address:port`` accepts a TCP connection, else why not (one phrase)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror as exc:
        return f"{address} does not resolve ({exc.strerror})"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


#: Addresses the Internet cannot reach (a lab VM, NAT): DNS cannot point at them.
_INTERNAL = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
    "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10")]


def reachable_from_internet(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not any(ip.version == n.version and ip in n for n in _INTERNAL)


def public_names(inv: Inventory) -> list[str]:
    """The names certificates are issued for over HTTP-01."""
    return [inv.api_host]


def host_addresses(inv: Inventory, resolve: Resolver) -> list[str]:
    """The hosts' addresses as IPs (a host given by DNS name is resolved)."""
    out: list[str] = []
    for host in inv.hosts:
        if _is_ip(host.address):
            out.append(host.address)
            continue
        try:
            out += resolve(host.address)
        except OSError:
            continue  # the SSH checks say it does not resolve
    return list(dict.fromkeys(out))


def check_dns(name: str, ours: Sequence[str], resolve: Resolver) -> Finding:
    check = f"dns {name}"
    shown = ", ".join(ours) or "none resolved"
    point = f"point the A (and AAAA, or none) record of {name} at {shown}"
    try:
        got = resolve(name)
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return fail(check, f"{name} does not resolve ({reason}); HTTP-01 needs it",
                    f"{point}, then wait for the TTL")
    if not got:
        return fail(check, f"{name} resolves to no address; HTTP-01 needs it", point)
    public = [a for a in ours if reachable_from_internet(a)]
    if not public:
        return warn(check, f"{name} resolves to {', '.join(got)}; the hosts' addresses"
                    f" ({shown}) are not public, so which one it must be cannot be told",
                    f"make sure {name} reaches this platform's port 80 from the Internet")
    others = [a for a in got if a not in ours]
    if others:
        return fail(check, f"{name} resolves to {', '.join(got)}: {', '.join(others)} is not"
                    f" a host's address ({shown}); HTTP-01 would reach another machine",
                    f"{point}, remove the others, then wait for the TTL")
    return ok(check, f"{name} resolves to {', '.join(got)} (a host's address)")


def check_web_ports(name: str, address: str, k3s_running: bool | None,
                    timeout: float = PORT_TIMEOUT, ports: Sequence[int] = (80, 443)
                    ) -> Finding:
    """Ports 80 and 443 of ``address`` from here: ok when both answer."""
    check = f"{name} ports 80/443"
    problems = {p: why for p in ports if (why := tcp_problem(address, p, timeout))}
    if not problems:
        return ok(check, f"{address} answers on {' and '.join(map(str, ports))} (from here)")
    said = "; ".join(f"{p}: {why}" for p, why in problems.items())
    if k3s_running:
        return fail(check, f"{address} {said}, though K3s runs there (Traefik serves them)",
                    "check UFW (inv host.harden), the provider's firewall, and Traefik"
                    " (kubectl -n kube-system get svc traefik)")
    state = ("K3s is not running there yet" if k3s_running is False else
             "whether K3s runs there is not known")
    return warn(check, f"{address} {said} (from here); {state}, so this cannot tell yet",
                "run inv doctor again after inv k3s.install; if still closed, open 80/443"
                " in the provider's firewall")
