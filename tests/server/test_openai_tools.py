"""Structured output, tool calls, logprobs and logit_bias with the official `openai` client
against real `ozfig serve` processes: the test model with its own ChatML template (ozfig's
generic tool format) and with Llama 3.1's template set by gguf-new-metadata (Llama 3's JSON
calls). Arguments and contents are checked against their JSON schemas with `jsonschema`.

The forced calls are asked with `parallel_tool_calls: false`: the 135M model, allowed more
calls, keeps writing them until max_tokens. `auto` needs a model that writes a call by itself: the 135M test model does when every
assistant turn of the conversation is its call of the tool for the same question, asked again
(a prompt, no logit bias or double: it copies the call, in the generic format's `<tool_call>`
block); the same model asked to say hello writes plain content.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from ozfig.llama.model import LlamaModel
from tests.support.chat_templates import BY_NAME
from tests.support.processes import serving
from tests.support.templated_model import with_chat_template

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 30},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather forecast of a city for the next days",
            "parameters": WEATHER_PARAMETERS,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
WEATHER_Q: list[Any] = [{"role": "user", "content": "What will the weather be in Paris for the next 3 days?"}]


class City(BaseModel):
    name: str = Field(max_length=40)
    country: str = Field(max_length=40)
    population: int = Field(ge=0, le=100_000_000)


def server_args(model: str) -> list[str]:
    return ["--model", model, "--max-tokens", "96", "--ctx", "2048", "--slots", "2", "--temperature", "0", "--prompt-cache", "exact"]


@pytest.fixture(scope="module")
def api(model_path) -> Iterator[openai.OpenAI]:
    with serving(*server_args(str(model_path))) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0, timeout=300)
        yield client
        client.close()


@pytest.fixture(scope="module")
def llama3_api(model_path) -> Iterator[openai.OpenAI]:
    path = with_chat_template(model_path, BY_NAME["llama-3.1-instruct"].path)
    with serving(*server_args(str(path))) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0, timeout=300)
        yield client
        client.close()


def check_calls(calls: list[Any], names: set[str]) -> None:
    assert calls
    for call in calls:
        assert call.type == "function" and call.id
        assert call.function.name in names
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def streamed(stream: Any) -> tuple[str, list[dict[str, str]], str | None]:
    """Content, tool calls (id, name, arguments) and finish_reason put together from chunks."""
    content, calls, reason = "", {}, None
    for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                if delta.id:
                    assert not call["id"], "a call's id comes once, in its first delta"
                    call["id"] = delta.id
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
            reason = choice.finish_reason or reason
    return content, [calls[i] for i in sorted(calls)], reason


def test_parse_with_a_pydantic_model_returns_the_object(api: openai.OpenAI) -> None:
    done = api.chat.completions.parse(
        model="ozfig",
        messages=[{"role": "user", "content": "Describe Paris, the capital of France."}],
        response_format=City,
        temperature=0,
    )
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, City), done.choices[0].message.content
    assert done.choices[0].finish_reason == "stop"


def test_json_object_content_parses(api: openai.OpenAI) -> None:
    done = api.chat.completions.create(
        model="ozfig",
        messages=[{"role": "user", "content": "Give me a JSON object about cats."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=96,
    )
    if done.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(done.choices[0].message.content or ""), dict)
    else:  # cut by max_tokens: still a JSON object's start
        assert (done.choices[0].message.content or "").startswith("{")


@pytest.mark.parametrize("which", ["api", "llama3_api"])
def test_required_gives_calls_matching_the_schema_streamed_and_not(which: str, request) -> None:
    client: openai.OpenAI = request.getfixturevalue(which)
    kw: dict[str, Any] = dict(
        model="ozfig", messages=WEATHER_Q, tools=TOOLS, tool_choice="required", parallel_tool_calls=False, temperature=0
    )
    done = client.chat.completions.create(**kw)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    check_calls(choice.message.tool_calls or [], {"get_weather", "add"})
    content, calls, reason = streamed(client.chat.completions.create(**kw, stream=True))
    assert reason == "tool_calls" and content == ""
    # the same call, compared as JSON: speculation `auto` (the default) decides from the decode
    # costs it measures whether to verify proposals in a batch, and a batch's rounding can tip a
    # near-tie of the grammar's optional whitespace ('"Paris",' or '"Paris" ,') on a loaded machine
    whole = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == whole
    assert all(c["id"].startswith("call_") for c in calls)


@pytest.mark.parametrize("which", ["api", "llama3_api"])
def test_a_named_function_is_the_one_called(which: str, request) -> None:
    client: openai.OpenAI = request.getfixturevalue(which)
    choice = {"type": "function", "function": {"name": "add"}}
    done = client.chat.completions.create(
        model="ozfig", messages=WEATHER_Q, tools=TOOLS, tool_choice=choice, parallel_tool_calls=False, temperature=0
    )
    calls = done.choices[0].message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "add"
    check_calls(calls, {"add"})
    _, streamed_calls, reason = streamed(
        client.chat.completions.create(
            model="ozfig",
            messages=WEATHER_Q,
            tools=TOOLS,
            tool_choice=choice,
            parallel_tool_calls=False,
            temperature=0,
            stream=True,
        )
    )
    assert reason == "tool_calls" and [c["name"] for c in streamed_calls] == ["add"]


def conversation_with_a_call(question: list[Any]) -> list[Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 3}'}}
    return [
        *question,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"forecast": ["sunny", "rain", "sunny"]}'},
    ]


@pytest.mark.parametrize("which", ["api", "llama3_api"])
def test_a_tool_result_turn_is_answered(which: str, request) -> None:
    client: openai.OpenAI = request.getfixturevalue(which)
    done = client.chat.completions.create(
        model="ozfig", messages=conversation_with_a_call(WEATHER_Q), tools=TOOLS, tool_choice="none", temperature=0
    )
    choice = done.choices[0]
    assert choice.message.content and not choice.message.tool_calls
    assert choice.finish_reason in ("stop", "length")


def test_auto_gives_a_call_when_the_model_writes_one_and_content_otherwise(api: openai.OpenAI) -> None:
    call = conversation_with_a_call(WEATHER_Q)[1]
    shown = [*WEATHER_Q, call, *WEATHER_Q, call, *WEATHER_Q]  # every assistant turn is the call
    done = api.chat.completions.create(model="ozfig", messages=shown, tools=TOOLS, temperature=0)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    check_calls(choice.message.tool_calls or [], {"get_weather", "add"})
    _, calls, reason = streamed(
        api.chat.completions.create(model="ozfig", messages=shown, tools=TOOLS, temperature=0, stream=True)
    )
    assert reason == "tool_calls" and [json.loads(c["arguments"]) for c in calls] == [
        json.loads(c.function.arguments) for c in choice.message.tool_calls or []
    ]
    hello = api.chat.completions.create(
        model="ozfig", messages=[{"role": "user", "content": "Say hello to me."}], tools=TOOLS, temperature=0
    )
    assert hello.choices[0].message.content and not hello.choices[0].message.tool_calls
    assert hello.choices[0].finish_reason in ("stop", "length")


def test_logprobs_have_openai_shapes_streamed_and_not(api: openai.OpenAI) -> None:
    kw: dict[str, Any] = dict(
        model="ozfig", messages=[{"role": "user", "content": "Say hello to me."}], max_tokens=8, temperature=0
    )
    done = api.chat.completions.create(**kw, logprobs=True, top_logprobs=3)
    entries = done.choices[0].logprobs.content  # type: ignore[union-attr]
    ended = done.choices[0].finish_reason == "stop"  # the end-of-text token has no entry
    assert entries and done.usage is not None and len(entries) == done.usage.completion_tokens - ended
    raw = b"".join(bytes(e.bytes or []) for e in entries)
    assert raw.decode("utf-8", "replace") == done.choices[0].message.content
    for e in entries:
        assert e.logprob <= 0 and bytes(e.bytes or []).decode("utf-8", "replace") == e.token
        assert len(e.top_logprobs) == 3
        tops = [t.logprob for t in e.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        assert e.top_logprobs[0].token == e.token and abs(tops[0] - e.logprob) < 1e-6  # greedy: the likeliest
    chunks = list(api.chat.completions.create(**kw, logprobs=True, top_logprobs=3, stream=True))
    streamed_entries = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content or []]
    assert [(e.token, round(e.logprob, 4)) for e in streamed_entries] == [(e.token, round(e.logprob, 4)) for e in entries]
    plain = api.chat.completions.create(**kw)
    assert plain.choices[0].logprobs is None


def test_a_logit_bias_of_minus_100_on_the_greedy_first_token_changes_it(api: openai.OpenAI, model_path) -> None:
    kw: dict[str, Any] = dict(
        model="ozfig", messages=[{"role": "user", "content": "Say hello to me."}], max_tokens=3, temperature=0
    )
    first = api.chat.completions.create(**kw, logprobs=True).choices[0].logprobs.content[0]  # type: ignore[union-attr]
    vocab = LlamaModel(str(model_path), vocab_only=True)
    try:  # the token whose bytes these are
        token = next(t for t in range(vocab.n_vocab) if vocab.piece(t) == bytes(first.bytes or []))
    finally:
        vocab.close()
    biased = api.chat.completions.create(**kw, logprobs=True, logit_bias={str(token): -100})
    assert biased.choices[0].logprobs.content[0].bytes != first.bytes  # type: ignore[union-attr]


def test_completions_continue_the_prompt_as_it_is(api: openai.OpenAI) -> None:
    done = api.completions.create(model="ozfig", prompt="The capital of France is", max_tokens=8, temperature=0, logprobs=2)
    choice = done.choices[0]
    assert done.object == "text_completion" and choice.text and choice.finish_reason in ("stop", "length")
    assert choice.logprobs is not None and "".join(choice.logprobs.tokens or []) == choice.text
    assert all(len(t) <= 2 for t in choice.logprobs.top_logprobs or [])
    text = "".join(c.choices[0].text for c in api.completions.create(
        model="ozfig", prompt="The capital of France is", max_tokens=8, temperature=0, stream=True
    ) if c.choices)
    assert text == choice.text
    with pytest.raises(openai.BadRequestError) as caught:
        api.completions.create(model="ozfig", prompt="def f(", suffix="return 1", max_tokens=4)
    assert "suffix" in str(caught.value)
