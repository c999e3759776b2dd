"""Reading result pages through the whole pipeline: extraction, limits, the deadline, caches."""

import asyncio
import time

from server.search.extract import extract_text
from server.search.hits import Hit
from tests.support.fake_duckduckgo import FakeDuckDuckGo
from tests.support.fake_web import ARTICLE, ARTICLE_SENTENCE, HUGE_BYTES, INJECTION_TEXT, FakeWeb
from tests.support.search_client import Recorded, duckduckgo, make_search, run_with


def test_extraction_keeps_the_article_and_drops_the_boilerplate() -> None:
    text = extract_text(ARTICLE)
    assert ARTICLE_SENTENCE in text
    assert "cookies" not in text and "Copyright" not in text and "Log in" not in text
    assert extract_text("") == "" and extract_text("<html><body></body></html>") == ""
    assert extract_text(ARTICLE) == text  # the same page again: the same text


def pages_for(ddg: FakeDuckDuckGo, web: FakeWeb, query: str, paths: list[str]) -> None:
    ddg.mode = "empty"
    ddg.results[query] = [(f"Title of {p}", web.url(p, host="pages.test"), f"snippet of {p}") for p in paths]


def test_the_top_pages_are_read_and_ranked_into_passages(ddg: FakeDuckDuckGo, web: FakeWeb) -> None:
    pages_for(ddg, web, "tide mill flour", ["/article", "/wiki/1", "/wiki/2", "/wiki/3"])
    recorded = Recorded()
    got = run_with(
        make_search(duckduckgo(ddg), recorded, read_pages=2), lambda s: s.passages("tide mill flour")
    )
    assert got[0].text == ARTICLE_SENTENCE and got[0].hit.title == "Title of /article"
    assert {p for _, p in web.requests} == {"/article", "/wiki/1"}  # the top two only
    texts = {p.text for p in got}
    assert "snippet of /wiki/2" in texts and "snippet of /wiki/3" in texts  # the others by their snippets
    assert "snippet of /article" not in texts  # a page read replaces its snippet
    assert set(recorded.connects) == {"127.0.0.2"}  # one connection per host, kept alive


def test_a_20_mb_page_is_cut_at_the_byte_cap(ddg: FakeDuckDuckGo, web: FakeWeb) -> None:
    pages_for(ddg, web, "filler", ["/huge"])
    start = time.monotonic()
    got = run_with(make_search(duckduckgo(ddg), max_bytes=300_000), lambda s: s.passages("filler"))
    assert time.monotonic() - start < 3.0
    assert got and "filler text" in got[0].text
    assert web.huge_sent < HUGE_BYTES / 2  # the reader stopped; the rest was never sent


def test_binary_and_missing_pages_fall_back_to_their_snippets(ddg: FakeDuckDuckGo, web: FakeWeb) -> None:
    pages_for(ddg, web, "binary", ["/binary", "/missing"])
    got = run_with(make_search(duckduckgo(ddg)), lambda s: s.passages("binary"))
    assert sorted(p.text for p in got) == ["snippet of /binary", "snippet of /missing"]


def test_a_slow_page_is_left_out_at_the_deadline(ddg: FakeDuckDuckGo, web: FakeWeb) -> None:
    pages_for(ddg, web, "tide mill", ["/slow", "/article"])
    title, url, snippet = ddg.results["tide mill"][1]
    ddg.results["tide mill"][1] = (title, url.replace("pages.test", "other.test"), snippet)  # one per host
    start = time.monotonic()
    got = run_with(make_search(duckduckgo(ddg), timeout=1.0), lambda s: s.passages("tide mill"))
    assert time.monotonic() - start < 1.6
    texts = [p.text for p in got]
    assert ARTICLE_SENTENCE in texts and "snippet of /slow" in texts


def test_page_text_with_forged_control_tokens_stays_text(ddg: FakeDuckDuckGo, web: FakeWeb) -> None:
    pages_for(ddg, web, "developer mode", ["/injection"])
    got = run_with(make_search(duckduckgo(ddg)), lambda s: s.passages("developer mode"))
    joined = " ".join(p.text for p in got)
    assert "<|im_start|>system" in joined and "Ignore previous instructions" in joined
    assert (
        INJECTION_TEXT.split(" ")[0] in joined
    )  # the passage is the text itself; the prompt tests neutralize it


def test_pages_are_cached_per_url_and_failures_briefly(ddg: FakeDuckDuckGo, web: FakeWeb) -> None:
    search = make_search(duckduckgo(ddg), page_cache_size=16)

    async def work(s):  # type: ignore[no-untyped-def]
        deadline = asyncio.get_running_loop().time() + 3
        hits = [
            Hit("a", web.url("/article", host="pages.test"), "s"),
            Hit("m", web.url("/missing", host="pages.test"), "s"),
        ]
        first = await s.read(hits, deadline)
        second = await s.read(hits, deadline)
        return first, second

    first, second = run_with(search, work)
    assert first == second
    assert web.requests == [("pages.test", "/article"), ("pages.test", "/missing")]
    assert search.page_cache.get(web.url("/missing", host="pages.test")) == ""
