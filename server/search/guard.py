"""SSRF guard: pages are fetched only from globally routable addresses.

Three checks, so that no route around one of them reaches an internal address:
- `check_url`: the scheme is http(s) and a literal IP host is allowed (aiohttp does not ask
  the resolver for a literal address), done on the first URL and on every redirect;
- `GuardedResolver`: after DNS resolution, a host any of whose addresses is not allowed is
  refused whole (a name that resolves to one public and one private address is refused);
- `GuardedSockets.factory`: the socket aiohttp is about to connect is checked again, the
  last word whatever path led there.

Not allowed: private, loopback, link-local, multicast, reserved, unspecified, shared
(100.64/10) and documentation ranges, with IPv4 addresses hidden in IPv6 forms
(`::ffff:a.b.c.d`, `::a.b.c.d`, 6to4, NAT64 `64:ff9b::/96`) unwrapped first. `allow`
(the `--fetch-allow` CIDRs) lets chosen networks through, as the tests' 127.0.0.2/32.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .errors import PageRefused

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LEGACY_IPV4_RE = re.compile(r"[0-9a-fA-FxX.]+")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def parse_networks(cidrs: Sequence[str]) -> list[IPNetwork]:
    """`--fetch-allow` values as networks; ValueError names a bad one."""
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()]


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries, if it carries one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def globally_routable(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None:
            return globally_routable(inner)
        if ip.teredo is not None:
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local or ip.is_loopback
    )


class AddressGuard:
    """Decides whether an address may be connected to."""

    def __init__(self, allow: Sequence[IPNetwork] = ()) -> None:
        self.allow = list(allow)

    def allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        return any(plain in net for net in self.allow) or globally_routable(ip)

    def check(self, address: str, what: str) -> None:
        if not self.allowed(address):
            raise PageRefused(f"{what} is at {address}, which is not a public address")

    def check_url(self, url: URL) -> None:
        """The URL may be requested: http(s), a host, and a literal IP host allowed."""
        if url.scheme not in ("http", "https"):
            raise PageRefused(f"{url.scheme or 'a relative'} URL is not fetched")
        host = url.raw_host
        if not host:
            raise PageRefused("a URL without a host is not fetched")
        literal = host.strip("[]")
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            if _LEGACY_IPV4_RE.fullmatch(literal):  # "2130706433", "127.1", "0x7f.1": inet_aton forms
                try:
                    literal = socket.inet_ntoa(socket.inet_aton(literal))
                except OSError:
                    return
            else:
                return  # a name: checked after resolution
        self.check(literal, f"{url.host}")


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
            self.guard.check(result["host"], host)
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
        address = str(sockaddr[0])
        if self.observe is not None:
            self.observe(address)
        if not self.guard.allowed(address):
            log.warning("refused a connection to %s (not a public address)", address)
            raise PermissionError(f"connecting to {address} is not allowed")
        return socket.socket(family=family, type=kind, proto=proto)
