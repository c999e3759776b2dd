"""Streams over a real socket: heartbeats while waiting, and a client that leaves cancels its work.

The app runs under uvicorn in a thread of this process, so the engine's own counters show
what happened to a generation after its client went away.
"""

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.runtime import Runtime
from server.settings import Settings
from tests.conftest import make_settings
from tests.support.processes import free_port
from tests.support.token_gate import TokenGate


@contextmanager
def live_server(settings: Settings) -> Iterator[tuple[str, Runtime]]:
    """`create_app(settings)` under uvicorn on a free port; yields (base URL, runtime) once ready."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="live-ozfig", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: health(base).get("status") == "ok", 120, "the server did not become ready")
        yield base, app.state.runtime
    finally:
        server.should_exit = True
        thread.join(30)


def health(base: str) -> dict:
    try:
        return httpx.get(base + "/health", timeout=5).json()
    except httpx.HTTPError:
        return {}


def wait_until(check: Callable[[], bool], timeout: float, message: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message if isinstance(message, str) else message())
        time.sleep(0.05)


@pytest.fixture(scope="module")
def live(model_path, fake_ddg_server) -> Iterator[tuple[str, Runtime]]:
    settings = make_settings(
        model_path, fake_ddg_server.url, max_tokens=900, heartbeat=0.1, search_timeout=1.5, slots=2
    )
    with live_server(settings) as served:
        yield served


def cancelled(runtime: Runtime) -> int:
    assert runtime.engine is not None
    return runtime.engine.stats.requests_finished["cancelled"]


def test_heartbeats_during_a_slow_search_then_leaving_cancels_the_generation(live, ddg) -> None:
    base, runtime = live
    before = cancelled(runtime)
    ddg.mode = "hang"  # the search waits out --search-timeout
    seen: list[str] = []
    with httpx.stream("GET", base + "/prompt/slow%20search?stream=true", timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["x-accel-buffering"] == "no"
        for line in r.iter_lines():
            seen.append(line)
            if line.startswith("data: "):
                break  # the first token: leave mid-answer
    first = seen.index(next(line for line in seen if line.startswith("event: ")))
    assert seen[:first].count(": ping") >= 3, seen[:first]
    assert json.loads(seen[-1][len("data: ") :])["text"]
    wait_until(lambda: cancelled(runtime) == before + 1, 10, "the generation was not cancelled")
    wait_until(lambda: health(base)["busy_slots"] == 0, 10, "a slot stayed busy")


def test_leaving_an_openai_stream_cancels_the_generation(live) -> None:
    base, runtime = live
    before = cancelled(runtime)
    body = {"messages": [{"role": "user", "content": "Write a long story."}], "stream": True}
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                break
    wait_until(lambda: cancelled(runtime) == before + 1, 10, "the generation was not cancelled")
    wait_until(lambda: health(base)["busy_slots"] == 0, 10, "a slot stayed busy")


def test_leaving_during_the_web_search_cancels_it_before_any_generation(live, ddg) -> None:
    base, runtime = live
    assert runtime.engine is not None
    submitted = runtime.engine.stats.requests_total
    ddg.mode = "hang"
    # only a cancelled search closes its connection to the hanging fake within the test's wait:
    # one left to run would hold it for a minute, then time out
    timeout, runtime.search.timeout = runtime.search.timeout, 60.0
    try:
        body = {"messages": [{"role": "user", "content": "leave early"}], "stream": True, "web_search": True}
        with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=60) as r:
            assert r.status_code == 200
            assert next(r.iter_lines()) == ": ping"
        wait_until(lambda: ddg.dropped == ["leave early"], 10, "the web search was not cancelled")
    finally:
        runtime.search.timeout = timeout
    assert runtime.engine.stats.requests_total == submitted  # cancelled before anything was generated
    assert ddg.queries == ["leave early"]


@pytest.mark.parametrize(
    "request_text",
    [
        "GET /prompt/leaving%20early HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: {length}\r\n\r\n{body}",
    ],
    ids=["prompt", "v1"],
)
def test_leaving_before_a_json_answer_cancels_it_and_logs_499(live, ddg, caplog, request_text) -> None:
    base, runtime = live
    assert runtime.engine is not None
    caplog.set_level(logging.INFO)
    before = cancelled(runtime)
    body = json.dumps({"messages": [{"role": "user", "content": "Write a long story."}]})
    raw = request_text.format(length=len(body), body=body).encode()
    # the engine decodes nothing until the client has gone: the answer cannot end first
    with TokenGate(runtime.engine).installed():
        sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        sock.sendall(raw)
        wait_until(lambda: health(base)["busy_slots"] == 1, 30, "the answer did not start")
        sock.close()
        wait_until(lambda: cancelled(runtime) == before + 1, 10, "the generation was not cancelled")
    wait_until(lambda: any(" 499 " in r.getMessage() for r in caplog.records), 10, "no 499 in the access log")
