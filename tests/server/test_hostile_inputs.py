"""Hostile inputs get a clear 4xx, and web failures are "no snippets": never a 500, never a hang."""

from __future__ import annotations

import json
import logging

import pytest

HELLO = [{"role": "user", "content": "hi"}]
V1 = "/v1/chat/completions"


def post_raw(client, raw: bytes, content_type: str | None = "application/json"):
    headers = {"content-type": content_type} if content_type else {}
    return client.post(V1, content=raw, headers=headers)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"messages": [{"role": "user", "content": "hi \\ud800"}]}',
        b'{"messages": [{"role": "user", "content": "hi \\udc00 there"}]}',
        b'{"messages": [{"role": "user", "content": "hi"}], "model": "\\ud800"}',
        b'{"messages": [{"role": "user", "content": "hi"}], "unknown": ["\\ud83d"]}',
    ],
)
def test_a_lone_surrogate_in_the_body_is_a_400(client, raw: bytes) -> None:
    r = post_raw(client, raw)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_json"
    assert "surrogate" in r.json()["error"]["message"]


def test_a_surrogate_pair_is_fine(client) -> None:
    """An escaped pair is the character it spells: the same prompt as the character sent as UTF-8."""
    escaped = post_raw(
        client, b'{"messages": [{"role": "user", "content": "hi \\ud83d\\ude00"}], "max_tokens": 1}'
    )
    assert escaped.status_code == 200, escaped.text
    raw = post_raw(
        client, '{"messages": [{"role": "user", "content": "hi \U0001f600"}], "max_tokens": 1}'.encode()
    )
    plain = post_raw(client, b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}')
    tokens = [r.json()["usage"]["prompt_tokens"] for r in (escaped, raw, plain)]
    assert tokens[0] == tokens[1] > tokens[2], tokens
    assert (
        escaped.json()["choices"][0]["message"] == raw.json()["choices"][0]["message"]
    )  # greedy: same answer


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_a_body_not_sent_as_json_is_a_415(client, content_type: str | None) -> None:
    r = post_raw(client, json.dumps({"messages": HELLO, "max_tokens": 1}).encode(), content_type)
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"
    r = post_raw(
        client, json.dumps({"messages": HELLO, "max_tokens": 1}).encode(), "application/json; charset=utf-8"
    )
    assert r.status_code == 200


def test_a_cross_site_browser_request_cannot_start_a_generation(client, ddg) -> None:
    r = client.get("/prompt/hello", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    assert r.json()["code"] == "cross_site_request"
    assert ddg.queries == []  # refused before anything ran
    # the chat page itself (same-origin) and a typed URL (none) may
    assert client.get("/prompt/hello", headers={"sec-fetch-site": "same-origin"}).status_code == 200


def test_messages_over_max_input_chars_are_a_413(client, settings) -> None:
    limit = settings.max_input_chars
    half = "a" * (limit // 2 + 1)
    body = {"messages": [{"role": "user", "content": half}, {"role": "assistant", "content": half}, *HELLO]}
    r = client.post(V1, json=body)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "input_too_large"
    assert str(limit) in r.json()["error"]["message"]


def test_health_shows_no_file_system_path(client, model_path) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert str(model_path.parent) not in r.text
    assert "model_path" not in r.json()
    assert r.json()["threads"] >= 1 and r.json()["threads_from"] == "setting"  # conftest sets --threads 2


@pytest.mark.parametrize(
    ("query", "status", "searched"),
    [
        ("two%0Alines", 200, "two\nlines"),
        ("tab%09and%0D%0Acrlf", 200, "tab\tand\r\ncrlf"),
        ("%01%02control%7F", 200, "\x01\x02control\x7f"),
        ("nul%00byte", 200, "nul\x00byte"),
        ("%0Aleading%20and%20trailing%0A", 200, "leading and trailing"),
        ("%0A", 400, None),
        ("%0A%0D%20%09", 400, None),
    ],
)
def test_every_query_reaches_the_prompt_route(
    client, ddg, query: str, status: int, searched: str | None
) -> None:
    """Newlines and control characters included: answered, or one of the route's documented 4xx."""
    r = client.get("/prompt/" + query)
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["message"] and ddg.queries == [searched]
    else:
        assert r.json()["code"] == "invalid_request" and "empty" in r.json()["detail"] and ddg.queries == []
    documented = client.get("/openapi.json").json()["paths"]["/prompt/{query}"]["get"]["responses"]
    assert str(status) in documented


def test_a_multi_line_query_over_the_limit_is_a_414(client, settings) -> None:
    r = client.get("/prompt/" + "a%0A" * (settings.max_query_chars // 2 + 1))
    assert r.status_code == 414 and r.json()["code"] == "query_too_long"


def test_a_surrogate_in_a_search_answer_is_replaced_and_not_cached_as_a_failure(client, ddg, caplog) -> None:
    ddg.raw_overrides["surrogate"] = (
        b'{"AbstractText": "Bad \\ud800 text", "AbstractURL": "https://x.example/\\udfff"}'
    )
    for _ in range(2):
        r = client.get("/prompt/surrogate")
        assert r.status_code == 200, r.text
        assert r.json()["sources"] == [
            {"n": 1, "title": "", "url": "https://x.example/\ufffd", "text": "Bad \ufffd text"}
        ]


def test_deeply_nested_search_json_gives_no_snippets_and_a_warning(client, ddg, caplog) -> None:
    depth = 3000
    nested = '{"Topics": [' * depth + "]}" * depth
    ddg.raw_overrides["deep"] = ('{"RelatedTopics": [' + nested + "]}").encode()
    with caplog.at_level(logging.WARNING, logger="server.search"):
        r = client.get("/prompt/deep")
    assert r.status_code == 200, r.text
    assert r.json()["sources"] == []
    assert any("RecursionError" in rec.getMessage() for rec in caplog.records)


def test_openapi_lists_every_status_and_n_is_one_or_null(client) -> None:
    spec = client.get("/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "413", "415", "500", "503", "504"} <= set(chat)
    prompt = spec["paths"]["/prompt/{query}"]["get"]["responses"]
    assert {"200", "400", "403", "414", "500", "503", "504"} <= set(prompt)
    n = spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]["n"]
    assert "const" not in n  # const 1 and nullable cannot both hold
    assert [a for a in n["anyOf"] if a.get("const") == 1 and a.get("type") == "integer"]
    assert {"type": "null"} in n["anyOf"]
