"""SSRF guard: pages are read only from public addresses, on the web's ports.

Three checks, so that no route around one of them reaches an internal address:
- `check_url`: the scheme is http(s), the port allowed, and a literal IP host (in any
  spelling a resolver accepts: "2130706433", "0x7f.1", "[::ffff:127.0.0.1]") allowed,
  on the first URL and on every redirect (aiohttp asks no resolver for a literal address);
- `GuardedResolver`: after DNS resolution, a host any of whose addresses (with the port)
  is not allowed is refused whole (a name with one public and one private address too);
- `GuardedSockets.factory`: the address and port aiohttp is about to connect to are
  checked again, the last word whatever path led there.

Allowed: a public address (see addresses.py: explicit tables, the same on every Python
version, IPv4 forms inside IPv6 unwrapped) on port 80 or 443, or a `--fetch-ports` port;
and any port of an address in a `--fetch-allow` network (the tests' 127.0.0.2/32).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .addresses import IPNetwork, in_networks, is_public, parse_ipv4_literal
from .errors import PageRefused

log = logging.getLogger(__name__)

WEB_PORTS = frozenset({80, 443})


def parse_networks(cidrs: Sequence[str]) -> list[IPNetwork]:
    """`--fetch-allow` values as networks; ValueError names a bad one."""
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()]


def parse_ports(ports: Iterable[str | int]) -> frozenset[int]:
    """`--fetch-ports` values as port numbers; ValueError names a bad one."""
    out = set()
    for raw in ports:
        port = int(raw)
        if not 1 <= port <= 65535:
            raise ValueError(f"{raw} is not a TCP port (1-65535)")
        out.add(port)
    return frozenset(out)


class AddressGuard:
    """Decides whether an address, and a port on it, may be connected to."""

    def __init__(self, allow: Sequence[IPNetwork] = (), ports: Iterable[int] = ()) -> None:
        self.allow = list(allow)
        self.ports = WEB_PORTS | frozenset(ports)

    def allowed(self, address: str, port: int | None = None) -> bool:
        """`address` may be read from (at `port`, when given)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if in_networks(ip, self.allow):
            return True
        return is_public(ip) and (port is None or port in self.ports)

    def check(self, address: str, what: str, port: int | None = None) -> None:
        if self.allowed(address):
            if not self.allowed(address, port):
                raise PageRefused(f"{what} asks for port {port}; pages are read on ports {self.port_list}")
            return
        raise PageRefused(f"{what} is at {address}, which is not a public address")

    @property
    def port_list(self) -> str:
        return ", ".join(str(p) for p in sorted(self.ports))

    def check_url(self, url: URL) -> None:
        """The URL may be requested: http(s), a host, a port allowed, and a literal IP host allowed."""
        if url.scheme not in ("http", "https"):
            raise PageRefused(f"{url.scheme or 'a relative'} URL is not fetched")
        host = url.raw_host
        if not host:
            raise PageRefused("a URL without a host is not fetched")
        literal = host.strip("[]")
        try:
            address = str(ipaddress.ip_address(literal))
        except ValueError:
            legacy = parse_ipv4_literal(literal)  # "2130706433", "127.1", "0x7f.1": inet_aton forms
            if legacy is None:
                return  # a name: its addresses and the port are checked after resolution
            address = str(legacy)
        self.check(address, f"{url.host}", url.port)


class GuardedResolver(AbstractResolver):
    """Resolves with `inner`, then refuses a host any of whose addresses is not allowed."""

    def __init__(self, inner: AbstractResolver, guard: AddressGuard) -> None:
        self.inner = inner
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            self.guard.check(result["host"], host, result["port"] or port or None)
        return results

    async def close(self) -> None:
        await self.inner.close()


class GuardedSockets:
    """aiohttp's `socket_factory`: checks each address before a socket is made for it."""

    def __init__(self, guard: AddressGuard, observe: Callable[[str], None] | None = None) -> None:
        self.guard = guard
        self.observe = observe

    def factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        address, port = str(sockaddr[0]), int(sockaddr[1])
        if self.observe is not None:
            self.observe(address)
        if not self.guard.allowed(address, port):
            log.warning(
                "refused a connection to %s port %d (not a public address, or not a web port)", address, port
            )
            raise PermissionError(f"connecting to {address} port {port} is not allowed")
        return socket.socket(family=family, type=kind, proto=proto)
