"""Search backends against their fixture servers: DuckDuckGo (Instant Answer + HTML page), SearXNG, none."""

import asyncio
import logging
import time

import aiohttp
import pytest

from server.search.backend import Cooldown, NoSearch
from server.search.duckduckgo import html_results, instant_answer_hits, result_url
from server.search.errors import SearchFailed
from server.search.searxng import SearXNG
from tests.support.fake_duckduckgo import (
    CHALLENGE,
    EMPTY,
    FakeDuckDuckGo,
    article,
    disambiguation,
    results_page,
)
from tests.support.fake_searxng import FakeSearXNG
from tests.support.search_client import duckduckgo, make_search, run_with

RESULTS = [
    (
        "Rust &amp; <b>Cargo</b>",
        "https://rust.example/book?a=1&b=2",
        "Rust is a systems programming language.",
    ),
    ("Second result", "https://second.example/", "A second snippet."),
]


def test_instant_answer_gives_abstract_topics_nested_topics_and_results_deduplicated() -> None:
    got = instant_answer_hits(article("Rust"))
    assert [h.url for h in got] == [
        "https://fake.example/wiki/abstract",
        "https://fake.example/related/1",
        "https://fake.example/related/2",
        "https://fake.example/nested/1",
        "https://fake.example/official",
    ]
    assert got[0].snippet.startswith("Rust is a subject") and got[0].title == "Rust (topic)"
    assert got[1].title == "Rust"  # a related topic's name: its Result link's text
    assert not any(h.readable for h in got)  # abstracts are the content; their links are not read
    assert [h.url for h in instant_answer_hits(disambiguation("API"))] == [
        "https://fake.example/d/1",
        "https://fake.example/d/2",
    ]
    assert instant_answer_hits(dict(EMPTY)) == []
    with pytest.raises(SearchFailed):
        instant_answer_hits(["not", "an", "object"])


def test_html_results_decode_redirect_links_and_drop_ads() -> None:
    hits = html_results(results_page("rust", RESULTS))
    assert [(h.title, h.url, h.snippet) for h in hits] == [
        (
            "Rust &amp; <b>Cargo</b>",
            "https://rust.example/book?a=1&b=2",
            "Rust is a systems programming language.",
        ),
        ("Second result", "https://second.example/", "A second snippet."),
    ]
    assert all(h.readable for h in hits)
    assert (
        result_url("//duckduckgo.com/l/?uddg=https%3A%2F%2Fa.example%2Fx%3Fy%3D1&rut=z")
        == "https://a.example/x?y=1"
    )
    assert result_url("https://direct.example/") == "https://direct.example/"


def test_no_results_page_is_empty_and_a_challenge_page_is_recognized() -> None:
    assert html_results(results_page("nothing", None)) == []
    with pytest.raises(SearchFailed) as info:
        html_results(CHALLENGE)
    assert info.value.cooldown


def search(backend, query: str):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with aiohttp.ClientSession() as session:
            return await backend.search(session, query, 2.0)

    return asyncio.run(go())


def test_duckduckgo_asks_both_endpoints_and_puts_web_results_first(ddg: FakeDuckDuckGo) -> None:
    ddg.results["what is rust"] = [(t, u, s) for t, u, s in RESULTS]
    hits = search(duckduckgo(ddg), "what is rust")
    assert ddg.html_queries == ["what is rust"] and ddg.queries == ["what is rust"]
    assert [h.url for h in hits][:3] == [
        "https://rust.example/book?a=1&b=2",
        "https://second.example/",
        "https://fake.example/wiki/abstract",
    ]


@pytest.mark.parametrize("mode", ["202", "challenge"])
def test_a_backoff_answer_rests_the_endpoint_for_the_cooldown(ddg: FakeDuckDuckGo, mode: str, caplog) -> None:
    ddg.html_mode = mode
    backend = duckduckgo(ddg, cooldown=60.0)
    with caplog.at_level(logging.WARNING):
        first = search(backend, "q1")
        second = search(backend, "q2")
    assert ddg.html_queries == ["q1"]  # the second search did not ask the resting endpoint
    assert ddg.queries == ["q1", "q2"]  # the Instant Answer API still answers
    assert first and second  # its snippets
    assert "no requests to it for 60 s" in caplog.text


def test_cooldown_ends() -> None:
    now = [0.0]
    rest = Cooldown("x", 10.0, clock=lambda: now[0])
    rest.check()
    rest.rest("answered HTTP 429")
    with pytest.raises(SearchFailed):
        rest.check()
    now[0] = 10.5
    rest.check()


def test_both_endpoints_failing_is_a_search_failure(ddg: FakeDuckDuckGo) -> None:
    ddg.mode = "500"
    ddg.html_mode = "202"
    with pytest.raises(SearchFailed):
        search(duckduckgo(ddg), "q")


def test_searxng_results_and_its_403_explained(searxng: FakeSearXNG, caplog) -> None:
    searxng.results["rust"] = [
        ("Rust", "https://rust.example/", "A language."),
        ("Bad", "javascript:x", "no"),
    ]
    backend = SearXNG(searxng.base, max_bytes=1_000_000, cooldown=60.0)
    hits = search(backend, "rust")
    assert [(h.title, h.url, h.snippet) for h in hits] == [("Rust", "https://rust.example/", "A language.")]
    searxng.mode = "403"
    backend = SearXNG(searxng.base + "/", max_bytes=1_000_000, cooldown=60.0)
    with caplog.at_level(logging.WARNING), pytest.raises(SearchFailed):
        search(backend, "rust")
    assert "add `json` to `search: formats:`" in caplog.text
    with pytest.raises(SearchFailed, match="resting"):
        search(backend, "rust")
    assert searxng.queries == ["rust", "rust"]


def test_none_searches_nothing() -> None:
    assert search(NoSearch(), "anything") == []
    assert run_with(make_search(NoSearch()), lambda s: s.passages("anything")) == []


@pytest.mark.parametrize(
    ("mode", "html_mode"),
    [("202", "202"), ("500", "challenge"), ("garbage", "202"), ("huge", "challenge"), ("hang", "hang")],
)
def test_every_search_failure_gives_no_passages_within_the_deadline(
    ddg: FakeDuckDuckGo, mode: str, html_mode: str
) -> None:
    ddg.mode, ddg.html_mode = mode, html_mode
    web_search = make_search(duckduckgo(ddg), timeout=1.0)
    start = time.monotonic()
    got = run_with(web_search, lambda s: s.passages("q"))
    assert time.monotonic() - start < 1.5
    assert got == []
    assert web_search.failures == 1


@pytest.mark.parametrize("mode", ["500", "garbage", "huge", "hang"])
def test_one_failing_endpoint_leaves_the_other_ones_results(ddg: FakeDuckDuckGo, mode: str) -> None:
    ddg.mode = mode
    ddg.results["rust"] = RESULTS[1:]
    got = run_with(make_search(duckduckgo(ddg), timeout=1.0, read_pages=0), lambda s: s.passages("rust"))
    assert [p.hit.url for p in got] == ["https://second.example/"]


def test_unreachable_backend_gives_nothing() -> None:
    backend = SearXNG("http://127.0.0.1:9", max_bytes=1000, cooldown=1.0)
    assert run_with(make_search(backend), lambda s: s.passages("q")) == []


def test_search_results_are_cached_per_backend_and_normalized_query(ddg: FakeDuckDuckGo) -> None:
    web_search = make_search(duckduckgo(ddg), cache_size=16)

    async def twice(s):  # type: ignore[no-untyped-def]
        return await s.passages("What is Rust"), await s.passages("  what   is rust ")

    a, b = run_with(web_search, twice)
    assert a == b and a
    assert ddg.queries == ["What is Rust"] and ddg.html_queries == ["What is Rust"]
