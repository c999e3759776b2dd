"""Conversations through /v1 and /prompt as clients send them: each turn reuses the last one's
prompt and answer (usage.prompt_tokens_details.cached_tokens), web-augmented turns keep their
sources, a follow-up is searched with its subject, and every prompt is rendered once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from ozfig.chat_format import ChatFormatter
from server.app import create_app
from server.search_query import search_query
from tests.conftest import make_settings, wait_ready


@pytest.fixture(scope="module")
def chat_client(model_path, fake_ddg_server) -> Iterator[TestClient]:
    settings = make_settings(model_path, fake_ddg_server.url, slots=2, max_tokens=24, read_pages=0, prompt_cache="on")
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        yield c


def complete(client: TestClient, messages: list[dict[str, str]], **extra: object) -> dict:
    r = client.post("/v1/chat/completions", json={"messages": messages, "temperature": 0, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_each_turn_reuses_the_previous_prompt_and_answer(chat_client: TestClient) -> None:
    messages = [{"role": "user", "content": "What is a volcano? Answer in two sentences."}]
    first = complete(chat_client, messages)
    messages += [first["choices"][0]["message"], {"role": "user", "content": "Where is the biggest one?"}]
    second = complete(chat_client, messages)
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"] // 2
    # streamed, with include_usage: the same field in the last chunk
    messages += [second["choices"][0]["message"], {"role": "user", "content": "Is it active?"}]
    body = {"messages": messages, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    r = chat_client.post("/v1/chat/completions", json=body)
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] >= second["usage"]["prompt_tokens"]


def test_a_web_chat_reuses_its_earlier_turns_and_keeps_their_sources(chat_client: TestClient, ddg) -> None:
    messages = [{"role": "user", "content": "what is rust"}]
    first = complete(chat_client, messages, web_search=True)
    assert first["sources"] and first["search_query"] == "what is rust"
    messages += [first["choices"][0]["message"], {"role": "user", "content": "who made it?"}]
    second = complete(chat_client, messages, web_search=True)
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    # the first turn as the model saw it, its sources included: its whole prompt is reused
    assert cached >= first["usage"]["prompt_tokens"] >= 0.8 * first["usage"]["prompt_tokens"]
    # the follow-up was searched with its subject
    assert second["search_query"] == "who made rust?"
    assert ddg.queries[-1] == "who made rust?"


def test_a_web_chat_without_the_remembered_sources_reuses_little(model_path, fake_ddg_server, ddg) -> None:
    """The control for the test above: a server that does not know the first turn's sources."""
    settings = make_settings(model_path, fake_ddg_server.url, slots=2, max_tokens=24, read_pages=0, prompt_cache="on")
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        wait_ready(a)
        wait_ready(b)
        messages = [{"role": "user", "content": "what is rust"}]
        first = complete(a, messages, web_search=True)
        messages += [first["choices"][0]["message"], {"role": "user", "content": "who made it?"}]
        second = complete(b, messages, web_search=True)
    # b never saw the first turn: only what its start-up warm-up left (the template's opening) is reused
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] < 0.2 * first["usage"]["prompt_tokens"]


@pytest.mark.parametrize(
    ("history", "question", "expected"),
    [
        (["when was the Eiffel Tower built?"], "how tall is it?", "how tall is Eiffel Tower?"),
        (["what is the speed of light?"], "who measured it?", "who measured speed of light?"),
        (["tell me about Marie Curie"], "what did she discover?", "what did Marie Curie discover?"),
        (["what is rust"], "and its history?", "and rust's history?"),
        (["what is rust"], "how do I install python?", "how do I install python?"),  # not a follow-up
        (["when was the Eiffel Tower built?"], "why?", "why? Eiffel Tower"),
    ],
)
def test_follow_ups_are_searched_with_their_subject(history: list[str], question: str, expected: str) -> None:
    messages = [{"role": "user", "content": h} for h in history] + [{"role": "user", "content": question}]
    assert search_query(messages, 500) == expected
    assert search_query(messages, 500, rewrite=False) == question


def test_prompt_json_checks_the_queue_before_searching(model_path, fake_ddg_server, ddg) -> None:
    settings = make_settings(model_path, fake_ddg_server.url, slots=1, queue=0)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        engine = c.app.state.runtime.engine  # type: ignore[attr-defined]
        engine.can_accept = lambda: False  # the one slot busy with a long answer, the queue 0 long
        r = c.get("/prompt/what%20is%20rust")
    assert r.status_code == 503
    assert ddg.queries == []  # no search was made for a request that could not be queued


class CountingFormatter:
    """Counts renders of the wrapped formatter."""

    def __init__(self, inner: ChatFormatter) -> None:
        self.inner = inner
        self.renders = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def tokens(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.renders += 1
        return self.inner.tokens(messages, *args, **kwargs)


@pytest.mark.parametrize("web", [False, True])
def test_a_prompt_is_rendered_once_for_what_it_holds(chat_client: TestClient, ddg, web: bool) -> None:
    runtime = chat_client.app.state.runtime  # type: ignore[attr-defined]
    counting = CountingFormatter(runtime.formatter)
    runtime.formatter = counting
    try:
        complete(chat_client, [{"role": "user", "content": "what is rust"}], web_search=web)
        v1 = counting.renders
        counting.renders = 0
        ddg.mode = "article" if web else "empty"  # /prompt always searches; "empty": no source fits
        assert chat_client.get("/prompt/what%20is%20rust").status_code == 200
        prompt = counting.renders
    finally:
        runtime.formatter = counting.inner
    # without sources: one render; with them: the check before the search, and the prompt with them
    assert v1 == (2 if web else 1)
    assert prompt == (2 if web else 1)
