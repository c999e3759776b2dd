"""Helpers every route module uses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request

from ..engine.engine import Engine
from ..errors import BodyTooLargeError, InvalidJSONError, OverloadedError, QueryTooLongError, RequestError
from ..runtime import Runtime

T = TypeVar("T")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class ClientGone(Exception):
    """The client closed the connection before the answer was ready."""


async def wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run `work`; if the client disconnects first, cancel it and raise ClientGone."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ClientGone()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        if not task.done():
            task.cancel()


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


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body parsed as JSON: 413 when too large, 400 when not UTF-8 JSON."""
    body = await read_body(request, max_bytes)
    if not body.strip():
        raise InvalidJSONError("the body is empty; send a JSON object")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidJSONError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InvalidJSONError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # e.g. an integer too long to convert
        raise InvalidJSONError(f"the body is not acceptable JSON: {exc}") from None
    except RecursionError:
        raise InvalidJSONError("the body is nested too deeply") from None


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
