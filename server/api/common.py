"""Helpers every route module uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from ozfig.engine.engine import Engine
from ozfig.errors import (
    BodyTooLargeError,
    CrossSiteRequestError,
    InputTooLargeError,
    InvalidJSONError,
    OverloadedError,
    QueryTooLongError,
    RequestError,
    UnsupportedMediaTypeError,
)

from ..runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class ClientGone(Exception):
    """The client left before its answer ended: it disconnected, or read nothing for the send timeout."""


async def wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ClientWatch:
    """`async with ClientWatch(receive):` around an answer's work: when the client disconnects (or
    `leave` is called), the task in the block is cancelled where it waits, and the block ends with
    `ClientGone`. The work runs in the caller's own task (no task per answer part), one watcher
    task per request waits for the disconnect."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.gone: str | None = None  # why the client is counted as gone
        self._task: asyncio.Task[object] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ClientWatch:
        self._task = asyncio.current_task()
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def _watch(self) -> None:
        await wait_for_disconnect(self.receive)
        self.leave("the client disconnected")

    def leave(self, why: str) -> None:
        """Count the client as gone: cancel the block's task (call from another task or a callback)."""
        if self.gone is None and self._task is not None:
            self.gone = why
            self._task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        # no await before this point: the watcher cannot run between the block's end and here
        assert self._watcher is not None and self._task is not None
        self._watcher.cancel()
        if self.gone is None:
            return
        uncancel = getattr(self._task, "uncancel", None)  # Python 3.11+: our cancellation is consumed
        if uncancel is not None and uncancel() > 0 and exc_type is asyncio.CancelledError:
            return  # cancelled from elsewhere too (the server stopping): let it through
        raise ClientGone(self.gone) from None


async def json_answer(request: Request, work: Awaitable[dict[str, object]]) -> Response:
    """The one way a whole (non-streamed) answer is sent, for /prompt and /v1 alike: `work`'s body
    as JSON, or 499 (nginx's "client closed request", for the access log) when the client left
    first, its generation cancelled. Streams go through `sse.StreamedAnswer`."""
    try:
        async with ClientWatch(request.receive):
            body = await work
    except ClientGone:
        return Response(status_code=499)
    return JSONResponse(body)


def check_query(query: str, max_chars: int) -> str:
    if not query.strip():
        raise RequestError("the query is empty: ask something, as in /prompt/what%20is%20rust")
    if len(query) > max_chars:
        raise QueryTooLongError(f"the query has {len(query)} characters; at most {max_chars} are accepted")
    return query.strip()


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 past `max_bytes` (by Content-Length or while reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(f"the body has {declared} bytes; at most {max_bytes} are accepted")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLargeError(f"the body is larger than {max_bytes} bytes, the most accepted")
    return bytes(body)


def check_json_media_type(request: Request) -> None:
    """415 unless the body is declared as JSON: a web page can send text/plain or a form to
    any address without asking (a "simple" cross-site request), but not application/json."""
    declared = request.headers.get("content-type", "")
    media_type = declared.split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaTypeError(
            f"the body must be sent with Content-Type: application/json, not {declared or 'none'!r}"[:200]
        )


async def read_json_body(request: Request, max_bytes: int) -> bytes:
    """The raw JSON body: 415 when not declared as JSON, 413 when too large, 400 when empty."""
    check_json_media_type(request)
    body = await read_body(request, max_bytes)
    if not body.strip():
        raise InvalidJSONError("the body is empty; send a JSON object")
    return body


def check_same_site(request: Request) -> None:
    """403 for a browser request another site started: an `<img src=".../prompt/...">` on any
    page must not start generations. Browsers send Sec-Fetch-Site; curl and API clients do not."""
    if request.headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
        raise CrossSiteRequestError(
            "a request started by another web site may not start a generation (Sec-Fetch-Site: cross-site)"
        )


def check_input_chars(chars: int, max_chars: int) -> None:
    if chars > max_chars:
        raise InputTooLargeError(
            f"the messages hold {chars} characters; at most {max_chars} are accepted (--max-input-chars)"
        )


def check_capacity(engine: Engine) -> None:
    """Refuse early (503) when every slot is busy and the queue is full.

    For answers that start streaming before they are queued (after a web search): the engine
    still decides at submit time, and a refusal then arrives as the stream's error event.
    """
    if not engine.can_accept():
        stats = engine.stats
        raise OverloadedError(
            f"all {stats.slots} slots are busy and {stats.queue_depth} requests are waiting; retry shortly",
            retry_after=2,
        )
