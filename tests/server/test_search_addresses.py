"""Which addresses the page reader may read from: a table of addresses, the same on every Python.

The table has each non-public range's first and last address and its neighbours, every IPv6
form that carries an IPv4 address, and the IPv4 spellings a resolver accepts. It is checked
here, with `ipaddress`'s own classification switched off (its ranges differ by Python version),
and on every other CPython 3.10+ this machine has (pyenv's, `python3.1x` on PATH).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from server.search import addresses
from server.search.addresses import (
    NON_PUBLIC_V4,
    NON_PUBLIC_V6,
    embedded_ipv4,
    in_networks,
    is_public,
    parse_ipv4_literal,
)
from server.search.guard import AddressGuard

PUBLIC, INSIDE = True, False

TABLE: list[tuple[str, bool]] = [
    # IPv4: each range's edges and the addresses around them
    ("0.0.0.0", INSIDE), ("0.255.255.255", INSIDE), ("1.0.0.0", PUBLIC),
    ("9.255.255.255", PUBLIC), ("10.0.0.0", INSIDE), ("10.255.255.255", INSIDE), ("11.0.0.0", PUBLIC),
    ("100.63.255.255", PUBLIC), ("100.64.0.0", INSIDE), ("100.127.255.255", INSIDE), ("100.128.0.0", PUBLIC),
    ("126.255.255.255", PUBLIC), ("127.0.0.0", INSIDE), ("127.0.0.1", INSIDE), ("127.255.255.255", INSIDE),
    ("128.0.0.0", PUBLIC),
    ("169.253.255.255", PUBLIC), ("169.254.0.0", INSIDE), ("169.254.169.254", INSIDE),
    ("169.254.255.255", INSIDE), ("169.255.0.0", PUBLIC),
    ("172.15.255.255", PUBLIC), ("172.16.0.0", INSIDE), ("172.31.255.255", INSIDE), ("172.32.0.0", PUBLIC),
    ("191.255.255.255", PUBLIC), ("192.0.0.0", INSIDE), ("192.0.0.9", INSIDE), ("192.0.0.255", INSIDE),
    ("192.0.1.0", PUBLIC), ("192.0.1.255", PUBLIC), ("192.0.2.0", INSIDE), ("192.0.2.255", INSIDE),
    ("192.0.3.0", PUBLIC),
    ("192.88.98.255", PUBLIC), ("192.88.99.0", INSIDE), ("192.88.99.255", INSIDE), ("192.88.100.0", PUBLIC),
    ("192.167.255.255", PUBLIC), ("192.168.0.0", INSIDE), ("192.168.255.255", INSIDE),
    ("192.169.0.0", PUBLIC),
    ("198.17.255.255", PUBLIC), ("198.18.0.0", INSIDE), ("198.19.255.255", INSIDE), ("198.20.0.0", PUBLIC),
    ("198.51.99.255", PUBLIC), ("198.51.100.0", INSIDE), ("198.51.100.255", INSIDE),
    ("198.51.101.0", PUBLIC),
    ("203.0.112.255", PUBLIC), ("203.0.113.0", INSIDE), ("203.0.113.255", INSIDE), ("203.0.114.0", PUBLIC),
    ("223.255.255.255", PUBLIC), ("224.0.0.0", INSIDE), ("239.255.255.255", INSIDE),
    ("240.0.0.0", INSIDE), ("255.255.255.255", INSIDE),
    ("8.8.8.8", PUBLIC), ("192.31.196.1", PUBLIC), ("192.52.193.1", PUBLIC), ("192.175.48.1", PUBLIC),
    # IPv6 ranges
    ("::", INSIDE), ("::1", INSIDE), ("::2", INSIDE),
    ("100::", INSIDE), ("100::ffff:ffff:ffff:ffff", INSIDE), ("100:0:0:1::", INSIDE),
    ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE), ("2000::", PUBLIC),
    ("2001::", INSIDE), ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE), ("2001:200::", PUBLIC),
    ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", PUBLIC), ("2001:db8::", INSIDE),
    ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE), ("2001:db9::", PUBLIC),
    ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUBLIC), ("2003::", PUBLIC),
    ("3ffe:ffff::", PUBLIC), ("3fff::", INSIDE), ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE),
    ("3fff:1000::", PUBLIC), ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUBLIC), ("4000::", INSIDE),
    ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE), ("5f00::", INSIDE),
    ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE), ("5f01::", INSIDE),
    ("fc00::", INSIDE), ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE), ("fe80::1", INSIDE),
    ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE), ("fec0::1", INSIDE), ("ff02::1", INSIDE),
    ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", INSIDE),
    ("2606:4700::1111", PUBLIC), ("2a00:1450:4001::200e", PUBLIC),
    ("fe80::1%eth0", INSIDE), ("2606:4700::1111%eth0", INSIDE),
    # IPv4 inside IPv6: mapped, compatible, NAT64 (well-known and local use), 6to4, Teredo
    ("::ffff:8.8.8.8", PUBLIC), ("::ffff:127.0.0.1", INSIDE), ("::ffff:10.0.0.1", INSIDE),
    ("::ffff:169.254.169.254", INSIDE), ("::ffff:0.0.0.0", INSIDE), ("::ffff:255.255.255.255", INSIDE),
    ("::8.8.8.8", PUBLIC), ("::127.0.0.1", INSIDE), ("::10.0.0.1", INSIDE),
    ("64:ff9b::808:808", PUBLIC), ("64:ff9b::7f00:1", INSIDE), ("64:ff9b::a9fe:a9fe", INSIDE),
    ("64:ff9b::c0a8:101", INSIDE),
    ("64:ff9b:1::808:808", INSIDE), ("64:ff9b:1::7f00:1", INSIDE),
    ("2002:808:808::", PUBLIC), ("2002:808:808:ffff:ffff:ffff:ffff:ffff", PUBLIC),
    ("2002:7f00:1::", INSIDE), ("2002:a00:1::", INSIDE), ("2002:c0a8:101::1", INSIDE), ("2002::", INSIDE),
    ("2001:0:808:808::fefe:fefe", PUBLIC),  # Teredo: server 8.8.8.8, client 1.1.1.1
    ("2001:0:808:808::80ff:fffe", INSIDE),  # client 127.0.0.1
    ("2001:0:a00:1::fefe:fefe", INSIDE),  # server 10.0.0.1
    ("2001::1", INSIDE),  # server 0.0.0.0, client 255.255.255.254
]  # fmt: skip

# inet_aton spellings a resolver accepts for an IPv4 address, and look-alikes it does not
SPELLINGS: list[tuple[str, str | None]] = [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("017700000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"), ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("127.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0X7F.1", "127.0.0.1"),
    ("10.0x1.1", "10.1.0.1"), ("169.254.43518", "169.254.169.254"), ("0xa9fea9fe", "169.254.169.254"),
    ("0", "0.0.0.0"), ("00", "0.0.0.0"), ("0x", None), ("0x0", "0.0.0.0"), ("4294967295", "255.255.255.255"),
    ("1.2.65535", "1.2.255.255"), ("1.16777215", "1.255.255.255"), ("8.8.8.8", "8.8.8.8"),
    ("4294967296", None), ("256.1.1.1", None), ("1.2.3.256", None), ("1.2.65536", None),
    ("1.16777216", None), ("08", None), ("0x1g", None), ("1..2", None), ("", None),
    ("1.2.3.4.5", None), ("example.com", None), ("+1", None), ("-1", None), ("1_0", None),
    ("\u0661\u0662\u0663", None), (" 1", None), ("1 ", None), ("0x7f.1.", "127.0.0.1"),
]  # fmt: skip

PUBLIC_PROPERTIES = ("is_global", "is_private", "is_reserved", "is_link_local", "is_loopback",
                     "is_multicast", "is_unspecified", "is_site_local", "ipv4_mapped", "sixtofour", "teredo")  # fmt: skip


@pytest.fixture()
def without_ipaddress_classification(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ipaddress`'s own range properties raise: what depends on them (and so on the Python
    version) fails."""

    def refuse(self: object) -> bool:
        raise AssertionError("the guard must not depend on ipaddress's version-dependent ranges")

    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network):
        for name in PUBLIC_PROPERTIES:
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, property(refuse))


@pytest.mark.parametrize(("address", "public"), TABLE)
def test_the_table(address: str, public: bool, without_ipaddress_classification: None) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
    assert AddressGuard().allowed(address) is public
    assert AddressGuard().allowed(address, 443) is public
    assert AddressGuard().allowed(address, 8080) is False


def test_every_listed_range_is_refused_at_both_ends(without_ipaddress_classification: None) -> None:
    ranges: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = [*NON_PUBLIC_V4, *NON_PUBLIC_V6]
    for network, name in ranges:
        for edge in (network.network_address, network.broadcast_address):
            wrapped = isinstance(edge, ipaddress.IPv6Address) and embedded_ipv4(edge)
            if not wrapped:  # the IPv4 forms are judged by what they carry (the table has them)
                assert not is_public(edge), (edge, name)


@pytest.mark.parametrize(("spelling", "address"), SPELLINGS)
def test_ipv4_spellings(spelling: str, address: str | None) -> None:
    got = parse_ipv4_literal(spelling)
    assert (str(got) if got is not None else None) == address


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's inet_aton is the reference")
@pytest.mark.parametrize(("spelling", "address"), [s for s in SPELLINGS if s[0].strip() == s[0] and s[0]])
def test_ipv4_spellings_read_as_the_c_library_reads_them(spelling: str, address: str | None) -> None:
    if spelling.endswith("."):
        spelling = spelling[:-1]  # a resolver drops the root's dot; inet_aton does not take it
    try:
        expected: str | None = socket.inet_ntoa(socket.inet_aton(spelling))
    except OSError:
        expected = None
    got = parse_ipv4_literal(spelling)
    assert (str(got) if got is not None else None) == expected


def test_embedded_forms() -> None:
    def inner(text: str) -> list[str]:
        return [str(a) for a in embedded_ipv4(ipaddress.IPv6Address(text))]

    assert inner("::ffff:1.2.3.4") == ["1.2.3.4"]
    assert inner("::1.2.3.4") == ["1.2.3.4"]
    assert inner("::") == [] and inner("::1") == [] and inner("::2") == ["0.0.0.2"]
    assert inner("64:ff9b::102:304") == ["1.2.3.4"]
    assert inner("64:ff9b:1::102:304") == ["1.2.3.4"]
    assert inner("2002:102:304:5::6") == ["1.2.3.4"]
    assert inner("2001:0:102:304::fefe:fefe") == ["1.2.3.4", "1.1.1.1"]
    assert inner("2606:4700::1111") == [] and inner("2001:db8::1") == []


def test_allowed_networks_match_the_address_or_all_it_carries() -> None:
    allow = [ipaddress.ip_network("127.0.0.2/32"), ipaddress.ip_network("fd00::/8")]
    yes = ["127.0.0.2", "::ffff:127.0.0.2", "::127.0.0.2", "64:ff9b::7f00:2", "64:ff9b:1::7f00:2",
           "2002:7f00:2::", "fd00::1"]  # fmt: skip
    no = ["127.0.0.1", "::ffff:127.0.0.1", "2002:7f00:1::", "2001:0:7f00:2::fefe:fefe", "fe80::1"]
    for text in yes:
        assert in_networks(ipaddress.ip_address(text), allow), text
    for text in no:
        assert not in_networks(ipaddress.ip_address(text), allow), text
    # Teredo: both the server and the client must be inside
    teredo = ipaddress.ip_address("2001:0:7f00:2::80ff:fffd")
    assert in_networks(teredo, allow)


def test_ports_web_ports_fetch_ports_and_allowed_networks() -> None:
    plain = AddressGuard()
    assert plain.allowed("8.8.8.8", 80) and plain.allowed("8.8.8.8", 443)
    for port in (0, 22, 79, 81, 442, 444, 6379, 8080, 65535):
        assert not plain.allowed("8.8.8.8", port), port
    more = AddressGuard(ports=[8080])
    assert more.allowed("8.8.8.8", 8080) and more.allowed("8.8.8.8", 80) and not more.allowed("8.8.8.8", 8081)
    assert not more.allowed("127.0.0.1", 8080)
    inside = AddressGuard([ipaddress.ip_network("10.0.0.0/8")])
    assert inside.allowed("10.1.2.3", 6379) and inside.allowed("::ffff:10.1.2.3", 22)
    assert not inside.allowed("8.8.8.8", 6379)


def other_pythons() -> list[str]:
    """CPython 3.10+ interpreters on this machine other than the one running the tests."""
    found: dict[str, str] = {}
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(root.glob("3.1*/bin/python3")) if root.is_dir() else []
    candidates += [Path(p) for v in range(10, 15) if (p := shutil.which(f"python3.{v}"))]
    for path in candidates:
        try:
            version = subprocess.run(
                [str(path), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            continue
        if version != f"{sys.version_info[0]}.{sys.version_info[1]}" and tuple(
            map(int, version.split("."))
        ) >= (3, 10):
            found.setdefault(version, str(path))
    return [found[v] for v in sorted(found)]


CLASSIFY = """
import importlib.util, ipaddress, json, sys
spec = importlib.util.spec_from_file_location("addresses", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
rows = json.loads(sys.stdin.read())
print(json.dumps([module.is_public(ipaddress.ip_address(a)) for a in rows["table"]]
                 + [str(module.parse_ipv4_literal(s)) for s in rows["spellings"]]))
"""


def test_the_table_is_the_same_on_every_python_here() -> None:
    """Python 3.10, 3.12 and 3.13 (where this machine has them) classify every row as this one does."""
    pythons = other_pythons()
    if not pythons:
        pytest.skip("no other CPython 3.10+ on this machine")
    rows = {"table": [a for a, _ in TABLE], "spellings": [s for s, _ in SPELLINGS]}
    expected = [public for _, public in TABLE] + [str(a) for _, a in SPELLINGS]
    versions = []
    for python in pythons:
        proc = subprocess.run(
            [python, "-I", "-c", CLASSIFY, addresses.__file__],
            input=json.dumps(rows), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == expected, python
        versions.append(python)
    assert versions
