"""Which IP addresses are public, from tables written out here (standard library only).

`ipaddress.is_global` and its kin are not used: their ranges changed between Python
versions (3.10, 3.12.4, 3.13), and the page reader must refuse the same addresses on all.
The tables follow IANA's IPv4 and IPv6 Special-Purpose Address Registries (every entry
not "globally reachable"), plus multicast and the reserved IPv4 class E; for IPv6 only the
global unicast space 2000::/3 can be public at all (IANA's IPv6 Address Space registry).

Where IANA marks single addresses inside a larger range as global (192.0.0.9, 2001:1::1,
the AMT and AS112 blocks in 2001::/23), the whole range is refused all the same: a page
is never served from them.

An IPv6 address that carries an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible
::a.b.c.d, 6to4 2002:AABB:CCDD::, NAT64 64:ff9b::/96 and the local-use 64:ff9b:1::/48,
Teredo 2001:0::/32) is judged by the IPv4 address(es) it leads to: `embedded_ipv4` is the
one place that unwraps them, for the public check and for `--fetch-allow` alike. The local-use
NAT64 prefix is never public whatever it carries (where it leads depends on the prefix length
its operator chose; it is read as a /96 for `--fetch-allow`).
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# (network, what it is): IANA IPv4 Special-Purpose Address Registry, multicast, class E
NON_PUBLIC_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "this network (RFC 791)"),
    (_V4("10.0.0.0/8"), "private use (RFC 1918)"),
    (_V4("100.64.0.0/10"), "shared address space, carrier-grade NAT (RFC 6598)"),
    (_V4("127.0.0.0/8"), "loopback (RFC 1122)"),
    (_V4("169.254.0.0/16"), "link local, cloud metadata (RFC 3927)"),
    (_V4("172.16.0.0/12"), "private use (RFC 1918)"),
    (_V4("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"),
    (_V4("192.0.2.0/24"), "documentation, TEST-NET-1 (RFC 5737)"),
    (_V4("192.88.99.0/24"), "deprecated 6to4 relay anycast (RFC 7526)"),
    (_V4("192.168.0.0/16"), "private use (RFC 1918)"),
    (_V4("198.18.0.0/15"), "benchmarking (RFC 2544)"),
    (_V4("198.51.100.0/24"), "documentation, TEST-NET-2 (RFC 5737)"),
    (_V4("203.0.113.0/24"), "documentation, TEST-NET-3 (RFC 5737)"),
    (_V4("224.0.0.0/4"), "multicast (RFC 5771)"),
    (_V4("240.0.0.0/4"), "reserved, and limited broadcast 255.255.255.255 (RFC 1112, RFC 919)"),
)

# only this block is allocated for global unicast (IANA IPv6 Address Space)
GLOBAL_UNICAST_V6 = _V6("2000::/3")

# (network, what it is): IANA IPv6 Special-Purpose Address Registry, multicast, link/site local.
# Those outside 2000::/3 are refused by GLOBAL_UNICAST_V6 already; they are listed to be named.
NON_PUBLIC_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified (RFC 4291)"),
    (_V6("::1/128"), "loopback (RFC 4291)"),
    (_V6("::/96"), "IPv4-compatible, deprecated (RFC 4291)"),
    (_V6("::ffff:0:0/96"), "IPv4-mapped (RFC 4291)"),
    (_V6("64:ff9b::/96"), "NAT64 well-known prefix (RFC 6052)"),
    (_V6("64:ff9b:1::/48"), "NAT64 local use (RFC 8215)"),
    (_V6("100::/64"), "discard only (RFC 6666)"),
    (_V6("2001::/23"), "IETF protocol assignments, Teredo 2001::/32 among them (RFC 2928, RFC 4380)"),
    (_V6("2001:db8::/32"), "documentation (RFC 3849)"),
    (_V6("2002::/16"), "6to4 (RFC 3056)"),
    (_V6("3fff::/20"), "documentation (RFC 9637)"),
    (_V6("5f00::/16"), "segment routing SIDs (RFC 9602)"),
    (_V6("fc00::/7"), "unique local (RFC 4193)"),
    (_V6("fe80::/10"), "link local (RFC 4291)"),
    (_V6("fec0::/10"), "site local, deprecated (RFC 3879)"),
    (_V6("ff00::/8"), "multicast (RFC 4291)"),
)

_MAPPED = _V6("::ffff:0:0/96")
_COMPATIBLE = _V6("::/96")
_NAT64 = _V6("64:ff9b::/96")
_NAT64_LOCAL = _V6("64:ff9b:1::/48")
_SIX_TO_FOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")
_LOW32 = 0xFFFFFFFF


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address leads to; () when it carries none.

    - IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (:: and ::1 aside): the low 32 bits;
    - NAT64 64:ff9b::/96, and 64:ff9b:1::/48 read as a /96 prefix: the low 32 bits;
    - 6to4 2002:AABB:CCDD::/48: the 32 bits after 2002;
    - Teredo 2001:0::/32: the server (bits 32-63) and the client (the low 32 bits, inverted).
    """
    value = int(ip)
    if ip in _MAPPED or ip in _NAT64 or ip in _NAT64_LOCAL:
        return (ipaddress.IPv4Address(value & _LOW32),)
    if ip in _COMPATIBLE:
        return (ipaddress.IPv4Address(value & _LOW32),) if value > 1 else ()
    if ip in _SIX_TO_FOUR:
        return (ipaddress.IPv4Address((value >> 80) & _LOW32),)
    if ip in _TEREDO:
        server = ipaddress.IPv4Address((value >> 64) & _LOW32)
        return server, ipaddress.IPv4Address(~value & _LOW32)
    return ()


def non_public_range(ip: IPAddress) -> str | None:
    """What non-public range `ip` itself is in (its embedded IPv4 aside), or None."""
    if isinstance(ip, ipaddress.IPv4Address):
        for v4, name in NON_PUBLIC_V4:
            if ip in v4:
                return name
        return None
    for v6, name in NON_PUBLIC_V6:
        if ip in v6:
            return name
    if ip not in GLOBAL_UNICAST_V6:
        return "outside the global unicast space 2000::/3"
    return None


def is_public(ip: IPAddress) -> bool:
    """Whether `ip` is a public address; an IPv6 form of IPv4 addresses is public when they all are."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        if ip in _NAT64_LOCAL:  # where it leads depends on the operator's prefix length
            return False
        inner = embedded_ipv4(ip)
        if inner:
            return all(non_public_range(v4) is None for v4 in inner)
    return non_public_range(ip) is None


def in_networks(ip: IPAddress, networks: list[IPNetwork]) -> bool:
    """Whether `ip`, or every IPv4 address it carries, is in one of `networks`."""
    if any(ip in net for net in networks):
        return True
    inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else ()
    return bool(inner) and all(any(v4 in net for net in networks) for v4 in inner)


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a URL host spells the way `inet_aton` (and so a resolver) reads it:
    1 to 4 dot-separated numbers, each decimal, octal (leading 0) or hex (0x), the last filling
    the remaining bytes ("2130706433", "0177.1", "0x7f.0.0.1", "127.1"); None otherwise."""
    text = host[:-1] if host.endswith(".") else host
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 0xFF for n in head) or last >= 1 << (8 * (5 - len(values))):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_OCTAL = re.compile(r"0[0-7]*")
_DECIMAL = re.compile(r"[1-9][0-9]*")


def _number(part: str) -> int | None:
    """One part of an inet_aton spelling: hex (0x), octal (leading 0) or decimal."""
    if _HEX.fullmatch(part):
        return int(part[2:], 16)
    if _OCTAL.fullmatch(part):
        return int(part, 8)
    if _DECIMAL.fullmatch(part):
        return int(part)
    return None
