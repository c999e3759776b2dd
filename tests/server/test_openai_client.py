"""The official `openai` Python client against a real `ozfig serve` process."""

from collections.abc import Iterator

import openai
import pytest

from tests.support.processes import serving

HELLO = [{"role": "user", "content": "Say hello to me."}]


@pytest.fixture(scope="module")
def api(model_path, fake_ddg_server) -> Iterator[openai.OpenAI]:
    args = [
        "--model",
        str(model_path),
        "--search-url",
        fake_ddg_server.url,
        "--search-html-url",
        fake_ddg_server.html_url,
        "--search-cache-size",
        "0",
    ]
    args += ["--max-tokens", "64", "--ctx", "1024", "--slots", "2", "--temperature", "0.7"]
    with serving(*args) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0, timeout=120)
        yield client
        client.close()


def test_models_and_a_completion_with_usage(api: openai.OpenAI) -> None:
    [model] = api.models.list().data
    done = api.chat.completions.create(model=model.id, messages=HELLO, max_tokens=6, temperature=0)
    assert done.object == "chat.completion"
    assert done.model == model.id
    choice = done.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert done.usage is not None
    assert done.usage.prompt_tokens > 5 and 1 <= done.usage.completion_tokens <= 6
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens


def test_streaming_gives_the_same_answer_and_usage(api: openai.OpenAI) -> None:
    whole = api.chat.completions.create(
        model="ozfig", messages=HELLO, max_completion_tokens=6, temperature=0, seed=7
    )
    stream = api.chat.completions.create(
        model="ozfig",
        messages=HELLO,
        max_completion_tokens=6,
        temperature=0,
        seed=7,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and whole.usage is not None
    assert chunks[-1].usage == whole.usage


SENTENCE = [{"role": "user", "content": "Write one sentence about the sea."}]


def test_stop_is_honoured(api: openai.OpenAI) -> None:
    # a question answered in words (on some CPUs the test model greets HELLO with emoji only)
    free = api.chat.completions.create(model="ozfig", messages=SENTENCE, max_tokens=10, temperature=0)
    content = free.choices[0].message.content or ""
    words = content.split()
    assert len(words) >= 3, content
    stop = " " + words[2]
    expected = content[: content.find(stop)]
    cut = api.chat.completions.create(
        model="ozfig", messages=SENTENCE, max_tokens=10, temperature=0, stop=[stop]
    )
    assert cut.choices[0].message.content == expected
    assert cut.choices[0].finish_reason == "stop"


def test_web_search_sources_come_back_in_an_extra_field(api: openai.OpenAI, ddg) -> None:
    done = api.chat.completions.create(
        model="ozfig",
        messages=[{"role": "user", "content": "what is rust"}],
        max_tokens=2,
        extra_body={"web_search": True},
    )
    assert ddg.queries == ["what is rust"]
    sources = (done.model_extra or {})["sources"]
    assert "https://fake.example/wiki/abstract" in [s["url"] for s in sources]
    assert set(sources[0]) == {"n", "title", "url", "text"}


def test_bad_requests_raise_bad_request_error(api: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        api.chat.completions.create(model="ozfig", messages=HELLO, n=2)
    assert info.value.status_code == 400 and info.value.param == "n"
    assert "n must be 1" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        api.chat.completions.create(model="ozfig", messages=[{"role": "wizard", "content": "hi"}])  # type: ignore[misc,list-item]
    assert info.value.param == "messages[0].role"
    with pytest.raises(openai.NotFoundError):  # /v1/completions is served now (issue 17); embeddings are not
        api.embeddings.create(model="ozfig", input="embeddings are not served")
