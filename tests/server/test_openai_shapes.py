"""POST /v1/chat/completions, GET /v1/models, /openapi.json: OpenAI's exact shapes and SSE framing.

Golden key sets: a renamed, missing or extra field fails here, as does a stream that does
not end with `data: [DONE]`.
"""

import json

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from server.api.openapi import spec as openapi_spec
from server.app import create_app

COMPLETION_KEYS = {"id", "object", "created", "model", "choices", "usage"}
CHOICE_KEYS = {"index", "message", "logprobs", "finish_reason"}
MESSAGE_KEYS = {"role", "content", "refusal"}
USAGE_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"}
CHUNK_KEYS = {"id", "object", "created", "model", "choices"}
CHUNK_CHOICE_KEYS = {"index", "delta", "logprobs", "finish_reason"}
ERROR_KEYS = {"message", "type", "param", "code"}

HELLO = [{"role": "user", "content": "Say hello to me."}]


def sse_data(text: str) -> list[str]:
    """The `data:` payloads of a stream, checking its framing strictly: comments or one data line per event."""
    assert text.endswith("\n\n"), "every event ends with a blank line"
    payloads = []
    for event in text[: -len("\n\n")].split("\n\n"):
        if event == ": ping":
            continue
        assert event.startswith("data: ") and "\n" not in event, f"bad event framing: {event!r}"
        payloads.append(event[len("data: ") :])
    assert payloads[-1] == "[DONE]", "a stream ends with data: [DONE]"
    assert "[DONE]" not in payloads[:-1]
    return payloads[:-1]


def post(client: TestClient, body: dict) -> tuple[int, dict]:
    r = client.post("/v1/chat/completions", json=body)
    return r.status_code, r.json()


def test_completion_has_openai_shape_usage_and_length_finish(client, ddg) -> None:
    r = client.post("/v1/chat/completions", json={"model": "anything", "messages": HELLO, "max_tokens": 3})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == COMPLETION_KEYS
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    assert body["model"] == "anything"
    [choice] = body["choices"]
    assert set(choice) == CHOICE_KEYS
    assert choice["index"] == 0 and choice["logprobs"] is None
    assert set(choice["message"]) == MESSAGE_KEYS
    assert choice["message"]["role"] == "assistant" and choice["message"]["refusal"] is None
    assert choice["message"]["content"]
    assert choice["finish_reason"] == "length"
    assert set(body["usage"]) == USAGE_KEYS
    usage = body["usage"]
    assert usage["completion_tokens"] == 3 and usage["prompt_tokens"] > 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert ddg.queries == []  # web search is opt-in


def test_stream_framing_chunks_usage_and_sources(client, ddg) -> None:
    body = {
        "messages": [{"role": "user", "content": "what is rust"}],
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
        "web_search": True,
    }
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    chunks = [json.loads(p) for p in sse_data(r.text)]
    first, *middle, last_choice, usage_chunk = chunks
    assert set(first) == CHUNK_KEYS | {"usage", "sources", "search_query"}
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {
        "n": next(s["n"] for s in first["sources"] if s["url"] == "https://fake.example/wiki/abstract"),
        "title": "what is rust (topic)",
        "url": "https://fake.example/wiki/abstract",
        "text": "what is rust is a subject with a long history. Fake abstract about what is rust.",
    } in first["sources"]
    assert [s["n"] for s in first["sources"]] == list(range(1, len(first["sources"]) + 1))
    assert ddg.queries == ["what is rust"]
    for chunk in [first, *middle, last_choice]:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"] == first["id"] and chunk["created"] == first["created"]
        assert chunk["usage"] is None
        [choice] = chunk["choices"]
        assert set(choice) == CHUNK_CHOICE_KEYS
    for chunk in middle:
        assert set(chunk) == CHUNK_KEYS | {"usage"}
        assert set(chunk["choices"][0]["delta"]) == {"content"}
        assert chunk["choices"][0]["finish_reason"] is None
    assert middle, "content chunks"
    assert last_choice["choices"][0]["delta"] == {}
    assert last_choice["choices"][0]["finish_reason"] == "length"
    assert set(usage_chunk) == CHUNK_KEYS | {"usage"}
    assert usage_chunk["choices"] == []
    assert set(usage_chunk["usage"]) == USAGE_KEYS
    assert usage_chunk["usage"]["completion_tokens"] == 3


def test_stream_content_equals_the_completion_and_has_no_usage_unless_asked(client) -> None:
    status, plain = post(client, {"messages": HELLO, "max_tokens": 4, "temperature": 0})
    assert status == 200
    r = client.post(
        "/v1/chat/completions", json={"messages": HELLO, "max_tokens": 4, "temperature": 0, "stream": True}
    )
    chunks = [json.loads(p) for p in sse_data(r.text)]
    assert all(set(c) == CHUNK_KEYS for c in chunks)  # no usage, no sources
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]


def test_web_search_augments_the_last_user_message_of_a_conversation(client, ddg) -> None:
    messages = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "what is rust"},
        {"role": "assistant", "content": "A programming language."},
        {"role": "user", "content": [{"type": "text", "text": "who "}, {"type": "text", "text": "made it"}]},
    ]
    status, body = post(client, {"messages": messages, "max_tokens": 2, "web_search": True})
    assert status == 200
    assert ddg.queries == ["who made rust"]  # the follow-up searched with the earlier turn's subject
    assert body["search_query"] == "who made rust"
    assert set(body) == COMPLETION_KEYS | {"sources", "search_query"}
    assert "https://fake.example/wiki/abstract" in [s["url"] for s in body["sources"]]
    assert all(set(s) == {"n", "title", "url", "text"} for s in body["sources"])
    status, plain = post(client, {"messages": messages, "max_tokens": 2})
    assert status == 200
    assert plain["usage"]["prompt_tokens"] < body["usage"]["prompt_tokens"]  # the sources are in the prompt
    assert "sources" not in plain


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], "body"),
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
        ({"messages": HELLO, "n": 2}, "n"),
        ({"messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"messages": HELLO, "max_tokens": "5"}, "max_tokens"),
        ({"messages": HELLO, "max_completion_tokens": 1.5}, "max_completion_tokens"),
        ({"messages": HELLO, "temperature": 3}, "temperature"),
        ({"messages": HELLO, "temperature": True}, "temperature"),
        ({"messages": HELLO, "top_p": -0.1}, "top_p"),
        ({"messages": HELLO, "stop": 5}, "stop"),
        ({"messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": HELLO, "stop": [""]}, "stop[0]"),
        ({"messages": HELLO, "seed": "x"}, "seed"),
        ({"messages": HELLO, "stream": "yes"}, "stream"),
        ({"messages": HELLO, "stream_options": {"include_usage": True}}, "stream_options"),
        (
            {"messages": HELLO, "stream": True, "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
        ),
        ({"messages": HELLO, "web_search": "on"}, "web_search"),
        ({"messages": HELLO, "model": 3}, "model"),
        ({"messages": HELLO, "tools": [{"type": "function"}]}, "tools[0].function"),
        ({"messages": HELLO, "tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name"),
        ({"messages": HELLO, "tool_choice": "required"}, "tool_choice"),
        ({"messages": HELLO, "tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": HELLO, "logprobs": "yes"}, "logprobs"),
        ({"messages": HELLO, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"messages": HELLO, "top_logprobs": 2}, "top_logprobs"),
        ({"messages": HELLO, "logit_bias": {"12": 101}}, "logit_bias.12"),
        ({"messages": HELLO, "logit_bias": {"x": 1}}, "logit_bias.x"),
        ({"messages": HELLO, "logit_bias": {"999999999": 1}}, "logit_bias"),
        ({"messages": HELLO, "top_k": -1}, "top_k"),
        ({"messages": HELLO, "min_p": 1.5}, "min_p"),
        ({"messages": HELLO, "repeat_penalty": 0}, "repeat_penalty"),
        ({"messages": HELLO, "response_format": {"type": "yaml"}}, "response_format"),
        ({"messages": HELLO, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
         "response_format.json_schema.schema"),
        (
            {"messages": HELLO, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"not": {}}}}},
            "response_format.json_schema.schema",
        ),
        (
            {"messages": [*HELLO, {"role": "tool", "tool_call_id": "nope", "content": "1"}]},
            "messages[1].tool_call_id",
        ),
        ({"messages": HELLO, "functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_bad_fields_are_400s_naming_the_field(client, body, param: str) -> None:
    status, answer = post(client, body)
    assert status == 400
    assert set(answer) == {"error"} and set(answer["error"]) == ERROR_KEYS
    assert answer["error"]["param"] == param
    assert answer["error"]["type"] == "invalid_request_error"
    assert param.split("[")[0].split(".")[0] in answer["error"]["message"]


def test_bad_json_is_a_400_in_openai_shape(client) -> None:
    for raw in (b"{", b"", b"\xff\xfe", b"[1, 2"):
        r = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "invalid_json"


def test_body_too_large_is_a_413(client, settings) -> None:
    big = b'{"messages": [{"role": "user", "content": "' + b"a" * settings.max_body_bytes + b'"}]}'
    r = client.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"

    def chunked():  # no Content-Length: refused while reading
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    r = client.post("/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_a_conversation_that_cannot_fit_is_a_400_even_when_streamed(client, settings) -> None:
    long = [{"role": "user", "content": "word " * (settings.ctx + 10)}]
    for stream in (False, True):
        status, body = post(client, {"messages": long, "stream": stream})
        assert status == 400
        assert body["error"]["code"] == "context_length_exceeded"


def test_unknown_routes_and_methods_answer_in_openai_shape(client) -> None:
    r = client.get("/v1/nothing/here")
    assert r.status_code == 404
    assert set(r.json()["error"]) == ERROR_KEYS and r.json()["error"]["code"] == "not_found"
    r = client.get("/v1/chat/completions")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_models_lists_the_loaded_model(client, settings) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"object", "data"} and body["object"] == "list"
    [model] = body["data"]
    assert set(model) == {"id", "object", "created", "owned_by"}
    assert model["object"] == "model" and model["id"] == settings.model_name
    status, answer = post(client, {"messages": HELLO, "max_tokens": 1})
    assert status == 200
    assert answer["model"] == model["id"]  # echoed when the request names no model


def test_503_while_loading_in_openai_shape(settings) -> None:
    app = create_app(settings)  # no lifespan: nothing loads
    c = TestClient(app)
    for r in (c.post("/v1/chat/completions", json={"messages": HELLO}), c.get("/v1/models")):
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "model_loading"
        assert r.headers["retry-after"]


def test_openapi_describes_every_route(client) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec == json.loads(json.dumps(openapi_spec()))
    assert spec["openapi"].startswith("3.")
    routes = [route for route in client.app.routes if isinstance(route, Route) and route.include_in_schema]
    assert routes
    for route in routes:
        path = route.path.replace("{query:text}", "{query}").replace("{name:path}", "{name}")
        assert path in spec["paths"], f"{path} is not in /openapi.json"
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in spec["paths"][path], f"{method} {path} is not in /openapi.json"
    assert len(spec["paths"]) == len(routes)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": "def f(", "suffix": "return 1"}, "suffix", "unsupported_value"),
        ({"prompt": "Hello", "echo": True}, "echo", "unsupported_value"),
        ({"prompt": ["a", "b"]}, "prompt", "invalid_value"),
        ({"prompt": "Hello", "best_of": 2}, "best_of", "unsupported_value"),
        ({"prompt": ""}, "prompt", "invalid_value"),
        ({"prompt": "Hello", "logprobs": 21}, "logprobs", "invalid_value"),
        ({"prompt": "Hello", "max_tokens": 0}, "max_tokens", "invalid_value"),
        ({"prompt": "Hello", "logit_bias": {"999999999": 5}}, "logit_bias", "invalid_value"),
    ],
)
def test_completions_refuse_what_they_cannot_do_by_name(client, body, param: str, code: str) -> None:
    r = client.post("/v1/completions", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param and r.json()["error"]["code"] == code
    assert param in r.json()["error"]["message"]


def test_completions_answer_in_openai_shape(client) -> None:
    r = client.post("/v1/completions", json={"prompt": "Once upon a time", "max_tokens": 3, "temperature": 0, "logprobs": 2})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "text_completion"
    [choice] = body["choices"]
    assert set(choice) == {"text", "index", "logprobs", "finish_reason"} and choice["finish_reason"] == "length"
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == 3 == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"])
    assert "".join(lp["tokens"]) == choice["text"] and lp["text_offset"][0] == 0
    assert body["usage"]["completion_tokens"] == 3
