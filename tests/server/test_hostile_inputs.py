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
    r = post_raw(client, b'{"messages": [{"role": "user", "content": "hi \\ud83d\\ude00"}], "max_tokens": 1}')
    assert r.status_code == 200, r.text


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
