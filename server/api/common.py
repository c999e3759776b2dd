"""Helpers every route module uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from ..errors import RequestError
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
    from ..errors import QueryTooLongError

    if not query.strip():
        raise RequestError("the query is empty: ask something, as in /prompt/what%20is%20rust")
    if len(query) > max_chars:
        raise QueryTooLongError(f"the query has {len(query)} characters; at most {max_chars} are accepted")
    return query.strip()
