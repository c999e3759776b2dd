"""Streamed answers: Server-Sent Events framing, heartbeats, and cancel-on-disconnect.

`StreamedAnswer` sends the chunks of an async generator as they come. While the generator
has nothing to give (a web search, a long prompt, a wait for a slot) it sends a heartbeat
every `heartbeat` seconds, so proxies and browsers keep the connection open. When the client
disconnects, the generator is cancelled where it waits and then closed: the
`engine.generate` block it is in exits, which cancels the generation, and a pending web
search is cancelled with it; `cleanup` (what the generator would have closed, had it
started) is closed last. An exception from the generator becomes one last chunk
(`on_error`), since the 200 has already been sent. A client that stops reading (its
buffers full, `send` waiting) for `send_timeout` seconds is treated as gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ozfig.aio import within

log = logging.getLogger(__name__)

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_MEDIA_TYPE = "text/event-stream"
SSE_HEARTBEAT = ": ping\n\n"
SSE_DONE = "data: [DONE]\n\n"


def sse_event(payload: object, event: str | None = None) -> str:
    """One SSE event whose data is `payload` as compact JSON (one line: JSON escapes newlines)."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {data}\n\n"


async def _next_chunk(chunks: AsyncGenerator[str, None]) -> str | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ClientDisconnected(Exception):
    """Sending failed: the client has gone."""


class StreamedAnswer(Response):
    def __init__(
        self,
        chunks: AsyncGenerator[str, None],
        *,
        media_type: str,
        heartbeat: float,
        heartbeat_chunk: str | None,
        on_error: Callable[[Exception], str],
        cleanup: contextlib.AsyncExitStack | None = None,
        send_timeout: float = 30.0,
    ) -> None:
        self.chunks = chunks
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.heartbeat = heartbeat
        self.heartbeat_chunk = heartbeat_chunk
        self.on_error = on_error
        self.cleanup = cleanup
        self.send_timeout = send_timeout
        self.init_headers(STREAM_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.create_task(self._pump(send))
        watcher = asyncio.create_task(_wait_for_disconnect(receive))
        try:
            done, _ = await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if pump not in done:
                log.info("client disconnected from %s; cancelling its answer", scope.get("path", "?"))
        finally:
            for task in (pump, watcher):
                task.cancel()
            results = await asyncio.gather(pump, watcher, return_exceptions=True)
            await self.chunks.aclose()
            if self.cleanup is not None:
                await self.cleanup.aclose()
        if isinstance(results[0], ClientDisconnected):
            log.info("client disconnected from %s; its answer was cancelled", scope.get("path", "?"))
        elif isinstance(results[0], Exception):
            log.error("streaming to %s failed", scope.get("path", "?"), exc_info=results[0])

    async def _send(self, send: Send, chunk: str, more: bool = True) -> None:
        message = {"type": "http.response.body", "body": chunk.encode("utf-8"), "more_body": more}
        try:
            await within(send(message), self.send_timeout)
        except OSError as exc:  # servers on ASGI spec 2.4 report a gone client this way
            raise ClientDisconnected() from exc
        except asyncio.TimeoutError:
            raise ClientDisconnected(f"the client read nothing for {self.send_timeout:g} s") from None

    async def _pump(self, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        try:
            await within(send(start), self.send_timeout)
        except asyncio.TimeoutError:
            raise ClientDisconnected(f"the client read nothing for {self.send_timeout:g} s") from None
        pending: asyncio.Task[str | None] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.create_task(_next_chunk(self.chunks))
                done, _ = await asyncio.wait({pending}, timeout=self.heartbeat)
                if not done:
                    if self.heartbeat_chunk:
                        await self._send(send, self.heartbeat_chunk)
                    continue
                task, pending = pending, None
                try:
                    chunk = task.result()
                except Exception as exc:
                    await self._send(send, self.on_error(exc))
                    break
                if chunk is None:
                    break
                if chunk:
                    await self._send(send, chunk)
            await self._send(send, "", more=False)
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
