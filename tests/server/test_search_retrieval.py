"""The retrieval check: does the chosen web context hold the answer?

Twenty fixture questions, each answered by one sentence deep in one page among
distractors (see tests/support/retrieval_corpus.py). Through the real pipeline (fake
DuckDuckGo, the page server, extraction, BM25, the budget), the chosen context must hold
the answer sentence for at least 18, and for more questions than snippets alone give.
"""

from server.prompt_build import neutralize
from server.search import choose_sources
from tests.support.fake_duckduckgo import FakeDuckDuckGo
from tests.support.fake_web import FakeWeb
from tests.support.retrieval_corpus import questions
from tests.support.search_client import duckduckgo, make_search, run_with

BUDGET = 512


def tokens(text: str) -> int:
    """About the tokens a Llama tokenizer gives English prose (4/3 per word)."""
    return (len(text.split()) * 4 + 2) // 3


def found_count(ddg: FakeDuckDuckGo, web: FakeWeb, read_pages: int) -> tuple[int, list[str]]:
    ddg.mode = "empty"
    for q in questions():
        ddg.results[q.query] = [(t, web.url(path, host="pages.test"), s) for t, path, s in q.results]
    search = make_search(duckduckgo(ddg), read_pages=read_pages, timeout=10.0)

    async def ask_all(s):  # type: ignore[no-untyped-def]
        out = []
        for q in questions():
            sources = choose_sources(await s.passages(q.query), BUDGET, tokens, neutralize)
            out.append(any(q.answer in src.text for src in sources))
        return out

    found = run_with(search, ask_all)
    missed = [q.query for q, ok in zip(questions(), found, strict=True) if not ok]
    return sum(found), missed


def test_the_context_holds_the_answer_for_at_least_18_of_20_and_more_than_snippets(
    ddg: FakeDuckDuckGo, web: FakeWeb
) -> None:
    assert len(questions()) == 20
    with_pages, missed = found_count(ddg, web, read_pages=3)
    snippets_only, _ = found_count(ddg, web, read_pages=0)
    print(f"answer in context: {with_pages}/20 with pages, {snippets_only}/20 with snippets only")
    assert with_pages >= 18, missed
    assert with_pages > snippets_only
