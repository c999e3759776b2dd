import asyncio
import time

import pytest

from server.websearch import SearchFailed, Snippet, SnippetCache, WebSearch, snippets_from_answer
from tests.support.fake_duckduckgo import EMPTY, article, disambiguation


def make_search(url: str, **kw: object) -> WebSearch:
    opts: dict[str, object] = dict(
        timeout=1.0, max_bytes=200_000, max_snippets=10, cache_size=16, cache_ttl=60.0
    )
    opts.update(kw)
    return WebSearch(url, **opts)  # type: ignore[arg-type]


def fetch(search: WebSearch, query: str) -> list[Snippet]:
    async def go() -> list[Snippet]:
        await search.start()
        try:
            return await search.snippets(query)
        finally:
            await search.close()

    return asyncio.run(go())


def test_article_gives_abstract_topics_nested_topics_and_results_with_urls_deduplicated() -> None:
    got = snippets_from_answer(article("Rust"), limit=20)
    assert [s.url for s in got] == [
        "https://fake.example/wiki/abstract",
        "https://fake.example/related/1",
        "https://fake.example/related/2",
        "https://fake.example/nested/1",
        "https://fake.example/official",
    ]
    assert got[0].text.startswith("Rust is a subject")


def test_answer_and_definition_are_taken_first() -> None:
    body = {**EMPTY, "Answer": "42", "Definition": "A number.", "DefinitionURL": "https://d.example/"}
    got = snippets_from_answer(body, limit=5)
    assert [s.text for s in got] == ["42", "A number."]
    assert got[1].url == "https://d.example/"


def test_disambiguation_and_empty_answers() -> None:
    assert [s.url for s in snippets_from_answer(disambiguation("API"), 10)] == [
        "https://fake.example/d/1",
        "https://fake.example/d/2",
    ]
    assert snippets_from_answer(dict(EMPTY), 10) == []
    with pytest.raises(SearchFailed):
        snippets_from_answer(["not", "an", "object"], 10)


def test_limit_caps_the_count() -> None:
    assert len(snippets_from_answer(article("x"), limit=2)) == 2


def test_fetch_sends_the_documented_query_and_reads_x_javascript(ddg) -> None:
    got = fetch(make_search(ddg.url), "what is rust")
    assert ddg.queries == ["what is rust"]
    assert got and got[0].url == "https://fake.example/wiki/abstract"


@pytest.mark.parametrize("mode", ["202", "500", "garbage", "huge", "hang"])
def test_every_failure_gives_no_snippets_in_bounded_time(ddg, mode: str) -> None:
    ddg.mode = mode
    search = make_search(ddg.url, timeout=1.0)
    start = time.monotonic()
    assert fetch(search, "q") == []
    assert time.monotonic() - start < 3.0
    assert search.failures == 1


def test_unreachable_server_gives_no_snippets() -> None:
    assert fetch(make_search("http://127.0.0.1:9/"), "q") == []


def test_results_are_cached_per_query(ddg) -> None:
    search = make_search(ddg.url)

    async def go() -> None:
        await search.start()
        try:
            a = await search.snippets("Rust")
            b = await search.snippets("  rust ")
            assert a == b
        finally:
            await search.close()

    asyncio.run(go())
    assert ddg.queries == ["Rust"]


def test_cache_is_bounded_and_expires() -> None:
    cache = SnippetCache(size=2, ttl=60)
    for q in ("a", "b", "c"):
        cache.put(q, [Snippet(q, "")])
    assert cache.get("a") is None and cache.get("c") is not None
    stale = SnippetCache(size=2, ttl=0.0)
    stale.put("a", [])
    time.sleep(0.01)
    assert stale.get("a") is None
