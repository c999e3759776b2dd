"""`StreamedAnswer` on its own (no model): heartbeats while the source is quiet, and errors
raised after the 200 ending the stream with one error event in the path's error shape."""

import asyncio
from collections.abc import AsyncGenerator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from ozfig.errors import DeadlineExceededError
from server.api.http_errors import EXCEPTION_HANDLERS, stream_error
from server.api.sse import SSE_HEARTBEAT, SSE_MEDIA_TYPE, StreamedAnswer, sse_event


def streaming_app(failure: Exception | None) -> Starlette:
    async def source() -> AsyncGenerator[str, None]:
        yield sse_event({"n": 1})
        await asyncio.sleep(0.35)  # quiet: heartbeats every 0.1 s
        if failure is not None:
            raise failure
        yield sse_event({"n": 2})

    async def route(request: Request) -> Response:
        return StreamedAnswer(
            source(),
            media_type=SSE_MEDIA_TYPE,
            heartbeat=0.1,
            heartbeat_chunk=SSE_HEARTBEAT,
            on_error=lambda exc: sse_event(stream_error(request, exc)[1]),
        )

    routes = [Route("/v1/stream", route), Route("/stream", route)]
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]


def test_heartbeats_fill_a_quiet_stream() -> None:
    r = TestClient(streaming_app(None)).get("/stream")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = r.text[:-2].split("\n\n")
    assert events[0] == 'data: {"n":1}' and events[-1] == 'data: {"n":2}'
    assert 2 <= events.count(": ping") <= 4
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
