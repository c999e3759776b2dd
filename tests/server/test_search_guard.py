"""The page reader's SSRF guard: only public addresses (and --fetch-allow networks) are read.

Refusals happen before any connection: the tests' resolver and connector record every
lookup and connection attempt, and answer only from a table of loopback addresses.
"""

import asyncio
import ipaddress
from urllib.parse import quote

import pytest

from server.search.addresses import is_public
from server.search.backend import NoSearch
from server.search.errors import PageFailed, PageRefused
from server.search.guard import AddressGuard
from server.search.hits import Hit
from tests.support.fake_web import FakeWeb
from tests.support.search_client import Recorded, make_search, run_with


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("192.0.2.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::", False),
        ("2002:a00:1::", False),
        ("2001::1", False),
    ],
)
def test_only_public_addresses_pass(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
    assert AddressGuard().allowed(address) is public


def test_allowed_networks_let_only_themselves_through() -> None:
    guard = AddressGuard([ipaddress.ip_network("127.0.0.2/32")])
    assert guard.allowed("127.0.0.2") and guard.allowed("::ffff:127.0.0.2")
    assert not guard.allowed("127.0.0.1") and not guard.allowed("::ffff:127.0.0.1")
    assert not guard.allowed("not an address")


def read(web: FakeWeb, url: str, recorded: Recorded, timeout: float = 3.0) -> str:
    search = make_search(NoSearch(), recorded)
    return run_with(search, lambda s: s.fetcher.html(url, timeout))


def test_an_allowed_page_is_read_through_the_recording_resolver_and_connector(web: FakeWeb) -> None:
    recorded = Recorded()
    html = read(web, web.url("/article", host="pages.test"), recorded)
    assert "tide mill" in html
    assert recorded.resolver.lookups == ["pages.test"]
    assert recorded.connects == ["127.0.0.2"]


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/article",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/article",
        "http://[::1]:{port}/article",
        "http://2130706433:{port}/article",  # 127.0.0.1 as one number
        "http://0x7f000001:{port}/article",  # in hex
        "http://017700000001:{port}/article",  # in octal
        "http://0177.0.0.1:{port}/article",
        "http://0x7f.1:{port}/article",
        "http://127.1:{port}/article",
        "http://0xa9fea9fe/latest/meta-data/",  # 169.254.169.254
        "http://[::127.0.0.1]:{port}/article",  # IPv4-compatible
        "http://[64:ff9b::7f00:1]:{port}/article",  # NAT64
        "http://[64:ff9b:1::7f00:1]:{port}/article",  # NAT64, local use
        "http://[2002:7f00:1::]:{port}/article",  # 6to4
        "http://[2001:0:808:808::80ff:fffe]:{port}/article",  # Teredo, client 127.0.0.1
        "http://[fd00::1]/",
        "http://8.8.8.8:6379/",  # public, but not a web port
        "http://[2606:4700::1111]:22/",
        "https://1.1.1.1:8443/",
        "file:///etc/passwd",
        "ftp://127.0.0.2/x",
    ],
)
def test_redirects_to_internal_addresses_are_refused_without_a_connection(web: FakeWeb, target: str) -> None:
    recorded = Recorded()
    to = target.format(port=web.port)
    url = web.url("/redirect", host="pages.test") + "?to=" + to
    with pytest.raises(PageRefused):
        read(web, url, recorded)
    assert recorded.connects == ["127.0.0.2"]  # the page that redirected, nothing after it
    assert recorded.resolver.lookups == ["pages.test"]
    assert web.requests == [("pages.test", "/redirect")]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{port}/article", "http://[::ffff:127.0.0.1]:{port}/article"]
)
def test_internal_literal_addresses_are_refused_without_a_lookup_or_connection(
    web: FakeWeb, url: str
) -> None:
    recorded = Recorded()
    with pytest.raises(PageRefused):
        read(web, url.format(port=web.port), recorded)
    assert recorded.resolver.lookups == [] and recorded.connects == [] and web.requests == []


@pytest.mark.parametrize("host", ["loopback.test", "private.test", "metadata.test", "mapped.test"])
def test_names_resolving_to_internal_addresses_are_refused_after_resolution(web: FakeWeb, host: str) -> None:
    recorded = Recorded()
    with pytest.raises(PageRefused):
        read(web, web.url("/article", host=host), recorded)
    assert recorded.resolver.lookups == [host]
    assert recorded.connects == [] and web.requests == []


def test_a_redirect_to_a_public_name_on_another_port_is_refused_after_resolution(web: FakeWeb) -> None:
    recorded = Recorded()
    recorded.resolver.table["public.test"] = "8.8.8.8"
    with pytest.raises(PageRefused, match="port 6379"):
        read(web, web.url("/redirect", host="pages.test") + "?to=http://public.test:6379/", recorded)
    assert recorded.resolver.lookups == ["pages.test", "public.test"]
    assert recorded.connects == ["127.0.0.2"]


def test_any_port_of_an_allowed_network_is_read(web: FakeWeb) -> None:
    """The fake web's random port on 127.0.0.2: --fetch-allow opens every port there."""
    assert web.port not in (80, 443)
    assert "tide mill" in read(web, web.url("/article"), Recorded())


def test_the_socket_check_refuses_what_the_others_missed() -> None:
    from server.search.guard import GuardedSockets

    seen: list[str] = []
    sockets = GuardedSockets(AddressGuard(), seen.append)
    for sockaddr in (("127.0.0.1", 80), ("8.8.8.8", 8080), ("::ffff:10.0.0.1", 443, 0, 0)):
        family = 10 if ":" in sockaddr[0] else 2
        with pytest.raises(PermissionError):
            sockets.factory((family, 1, 6, "", sockaddr))
    assert seen == ["127.0.0.1", "8.8.8.8", "::ffff:10.0.0.1"]


def test_a_redirect_to_a_name_that_resolves_inside_is_refused(web: FakeWeb) -> None:
    recorded = Recorded()
    inner = web.url("/article", host="private.test")
    with pytest.raises(PageRefused):
        read(web, web.url("/redirect", host="pages.test") + "?to=" + inner, recorded)
    assert recorded.resolver.lookups == ["pages.test", "private.test"]
    assert recorded.connects == ["127.0.0.2"]


def test_a_name_with_one_inside_address_among_public_ones_is_refused_whole(web: FakeWeb) -> None:
    recorded = Recorded()

    async def both(host: str, port: int = 0, family: object = None) -> list:
        one = await type(recorded.resolver).resolve(recorded.resolver, "pages.test", port)
        two = await type(recorded.resolver).resolve(recorded.resolver, "private.test", port)
        return one + two

    recorded.resolver.resolve = both  # type: ignore[method-assign]
    with pytest.raises(PageRefused):
        read(web, web.url("/article", host="mixed.test"), recorded)
    assert recorded.connects == []


def test_no_proxy_is_taken_from_the_environment(web: FakeWeb, monkeypatch: pytest.MonkeyPatch) -> None:
    # a proxy variable pointing at a dead port: a reader that used it would fail
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    recorded = Recorded()
    assert "tide mill" in read(web, web.url("/article", host="pages.test"), recorded)
    assert recorded.connects == ["127.0.0.2"]


def test_too_many_redirects_and_non_html_are_not_read(web: FakeWeb) -> None:
    chain = web.url("/article", host="pages.test")
    for _ in range(5):
        chain = web.url("/redirect", host="pages.test") + "?to=" + quote(chain, safe="")
    with pytest.raises(PageFailed, match="redirects"):
        read(web, chain, Recorded())
    with pytest.raises(PageFailed, match="not HTML"):
        read(web, web.url("/binary", host="pages.test"), Recorded())
    with pytest.raises(PageFailed, match="404"):
        read(web, web.url("/missing", host="pages.test"), Recorded())


def test_the_page_search_pipeline_never_reads_refused_hits(web: FakeWeb) -> None:
    recorded = Recorded()
    search = make_search(NoSearch(), recorded)
    hits = [
        Hit("inside", f"http://127.0.0.1:{web.port}/article", "snippet one"),
        Hit("metadata", "http://169.254.169.254/latest/meta-data/", "snippet two"),
        Hit("fine", web.url("/article", host="pages.test"), "snippet three"),
    ]

    async def work(s):  # type: ignore[no-untyped-def]
        return await s.read(hits, asyncio.get_running_loop().time() + 3)

    documents = run_with(search, work)
    assert [text for _, text in documents][:2] == ["snippet one", "snippet two"]  # fell back to the snippet
    assert "tide mill" in documents[2][1]
    assert recorded.connects == ["127.0.0.2"]
