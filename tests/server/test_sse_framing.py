"""`StreamedAnswer` on its own (no model): heartbeats while the source is quiet, and errors
raised after the 200 ending the stream with one error event in the path's error shape.

The source stays quiet until the stream has sent `PINGS` heartbeats (counted on the way out),
not for a time: the test counts steps, whatever the machine's load.
"""

import asyncio
from collections.abc import AsyncGenerator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ozfig.errors import DeadlineExceededError
from server.api.http_errors import EXCEPTION_HANDLERS, stream_error
from server.api.sse import SSE_HEARTBEAT, SSE_MEDIA_TYPE, StreamedAnswer, sse_event

PINGS = 3


def streaming_app(failure: Exception | None) -> ASGIApp:
    heartbeats: dict[str, asyncio.Event] = {}
    sent = [0]

    async def source() -> AsyncGenerator[str, None]:
        yield sse_event({"n": 1})
        await heartbeats["enough"].wait()  # quiet until PINGS heartbeats went out
        if failure is not None:
            raise failure
        yield sse_event({"n": 2})

    async def route(request: Request) -> Response:
        heartbeats["enough"] = asyncio.Event()
        sent[0] = 0
        return StreamedAnswer(
            source(),
            media_type=SSE_MEDIA_TYPE,
            heartbeat=0.01,
            heartbeat_chunk=SSE_HEARTBEAT,
            on_error=lambda exc: sse_event(stream_error(request, exc)[1]),
        )

    routes = [Route("/v1/stream", route), Route("/stream", route)]
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        async def watch(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and message.get("body") == SSE_HEARTBEAT.encode():
                sent[0] += 1
                if sent[0] == PINGS:
                    heartbeats["enough"].set()

        await app(scope, receive, watch)

    return counting


def test_heartbeats_fill_a_quiet_stream() -> None:
    r = TestClient(streaming_app(None)).get("/stream")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = r.text[:-2].split("\n\n")
    assert events[0] == 'data: {"n":1}' and events[-1] == 'data: {"n":2}'
    # at least PINGS: the source waited for them; one more may go out while it wakes up
    assert PINGS <= events.count(": ping") <= PINGS + 1
    assert set(events[1:-1]) == {": ping"}


def test_an_error_midway_is_the_last_event_in_the_paths_error_shape() -> None:
    client = TestClient(streaming_app(DeadlineExceededError("too slow")))
    last = client.get("/v1/stream").text[:-2].split("\n\n")[-1]
    assert last == (
        'data: {"error":{"message":"too slow","type":"timeout_error","param":null,"code":"deadline_exceeded"}}'
    )
    last = client.get("/stream").text[:-2].split("\n\n")[-1]
    assert last == 'data: {"detail":"too slow","code":"deadline_exceeded"}'


def test_an_unexpected_error_midway_hides_its_details(caplog) -> None:
    client = TestClient(streaming_app(RuntimeError("secret internals")))
    text = client.get("/v1/stream").text
    assert "secret internals" not in text and "Traceback" not in text
    assert text.endswith('"code":"internal_error"}}\n\n')
    assert "secret internals" in caplog.text  # logged with its traceback for the operator
