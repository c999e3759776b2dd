"""GET /prompt/{query} streamed: SSE token events and a final `done`, or plain text for curl."""

import json

from starlette.testclient import TestClient


def events(text: str) -> list[tuple[str, dict]]:
    """(event name, data) of an SSE body, checking its framing: comments, or one event and one data line."""
    assert text.endswith("\n\n")
    out = []
    for block in text[:-2].split("\n\n"):
        if block == ": ping":
            continue
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), block
        out.append((name_line[len("event: ") :], json.loads(data_line[len("data: ") :])))
    return out


def test_event_stream_matches_the_json_answer(client: TestClient, ddg) -> None:
    plain = client.get("/prompt/what%20is%20rust").json()
    r = client.get("/prompt/what%20is%20rust", headers={"Accept": "text/event-stream"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
    stream = events(r.text)
    *tokens, (last, done) = stream
    assert last == "done"
    assert tokens and all(name == "token" and set(data) == {"text"} for name, data in tokens)
    assert set(done) == {"message", "sources", "usage", "finish_reason"}
    assert "".join(data["text"] for _, data in tokens).strip() == done["message"] == plain["message"]
    assert done["sources"] == plain["sources"]
    assert done["usage"] == plain["usage"]  # --prompt-cache exact (the tests' setting): short prompts reuse nothing
    assert done["finish_reason"] in ("stop", "length")
    assert ddg.queries == ["what is rust", "what is rust"]


def test_plain_text_stream_for_curl(client: TestClient, ddg) -> None:
    plain = client.get("/prompt/tell%20me%20about%20paris").json()
    r = client.get("/prompt/tell%20me%20about%20paris?stream=text")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    answer, _, sources = r.text.partition("\n\n[1] ")
    assert answer.strip() == plain["message"]
    first = plain["sources"][0]
    assert sources.splitlines()[0] == f"{first['title']} {first['url']}"
    assert f"[{len(plain['sources'])}] " in r.text


def test_stream_query_parameter(client: TestClient) -> None:
    r = client.get("/prompt/hi?stream=maybe")
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_value" and "stream" in r.json()["detail"]
    r = client.get("/prompt/%20?stream=true")  # checked before the stream starts
    assert r.status_code == 400 and "empty" in r.json()["detail"]
