"""Streamed answers: Server-Sent Events framing, heartbeats, and cancel-on-disconnect.

`StreamedAnswer` sends the chunks of an async generator as they come, consumed in the request's
own task: per chunk, one `__anext__` and one `send`, no task and no timer. While the generator
has nothing to give (a web search, a long prompt, a wait for a slot) a heartbeat is sent every
`heartbeat` seconds, so proxies and browsers keep the connection open. When the client
disconnects (`common.ClientWatch`), the generator is cancelled where it waits and then closed:
the `engine.generate` block it is in exits, which cancels the generation, and a pending web
search is cancelled with it; `cleanup` (what the generator would have closed, had it started)
is closed last. An exception from the generator becomes one last chunk (`on_error`), since the
200 has already been sent. A client that leaves a write unread (its buffers full, `send`
waiting) for `send_timeout` seconds is treated as gone: one timer per stream checks, at
least four times per `send_timeout`, so it is dropped within 1.25 × `send_timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Callable

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from .common import ClientGone, ClientWatch

log = logging.getLogger(__name__)

to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # compact, one line

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_MEDIA_TYPE = "text/event-stream"
SSE_HEARTBEAT = ": ping\n\n"
SSE_DONE = "data: [DONE]\n\n"


def sse_data(data: str, event: str | None = None) -> str:
    """One SSE event whose data is `data`, already one line (compact JSON)."""
    return (f"event: {event}\n" if event else "") + f"data: {data}\n\n"


def sse_event(payload: object, event: str | None = None) -> str:
    """One SSE event whose data is `payload` as compact JSON (one line: JSON escapes newlines)."""
    return sse_data(to_json(payload), event)


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
        path = scope.get("path", "?")
        stream = _Stream(self, send, ClientWatch(receive))
        try:
            async with stream.client:
                stream.tick()
                await stream.run()
        except ClientGone as gone:
            log.info("the client of %s left (%s); its answer was cancelled", path, gone)
        except Exception:
            log.exception("streaming to %s failed", path)
        finally:
            await stream.stop()
            await self.chunks.aclose()
            if self.cleanup is not None:
                await self.cleanup.aclose()


class _Stream:
    """One answer being sent: its chunks, the heartbeats between them, and the send timeout."""

    def __init__(self, answer: StreamedAnswer, send: Send, client: ClientWatch) -> None:
        self.answer = answer
        self.send = send
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.last_sent = self.loop.time()
        self.sending_since: float | None = None
        self.beating: asyncio.Task[None] | None = None  # a heartbeat being sent
        self.timer: asyncio.TimerHandle | None = None
        self.every = min(answer.heartbeat, answer.send_timeout / 4)

    async def run(self) -> None:
        answer = self.answer
        await self.put(
            {"type": "http.response.start", "status": answer.status_code, "headers": answer.raw_headers}
        )
        chunks = answer.chunks
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:
                await self.put_body(answer.on_error(exc))
                break
            if chunk:
                await self.put_body(chunk)
        await self.put_body("", more=False)

    async def put_body(self, chunk: str, more: bool = True) -> None:
        await self.put({"type": "http.response.body", "body": chunk.encode("utf-8"), "more_body": more})

    async def put(self, message: Message) -> None:
        if self.beating is not None:  # one message at a time: let the heartbeat's go first
            await self.beating
        self.sending_since = self.loop.time()
        try:
            await self.send(message)
        except OSError as exc:  # servers on ASGI spec 2.4 report a gone client this way
            raise ClientGone("the connection is closed") from exc
        finally:
            self.sending_since = None
            self.last_sent = self.loop.time()

    def tick(self) -> None:
        """The stream's one timer: a heartbeat when it has been quiet, the client dropped when a
        write has waited past the send timeout."""
        now = self.loop.time()
        if self.sending_since is not None:
            if now - self.sending_since >= self.answer.send_timeout:
                self.client.leave(f"it read nothing for {self.answer.send_timeout:g} s")
                return
        elif now - self.last_sent >= self.answer.heartbeat and self.beating is None:
            self.last_sent = now
            if self.answer.heartbeat_chunk:
                self.beating = asyncio.create_task(self._beat(self.answer.heartbeat_chunk))
        due = self.last_sent + self.answer.heartbeat if self.sending_since is None else now + self.every
        self.timer = self.loop.call_at(min(due, now + self.every), self.tick)

    async def _beat(self, chunk: str) -> None:
        try:
            self.sending_since = self.loop.time()
            await self.send({"type": "http.response.body", "body": chunk.encode("utf-8"), "more_body": True})
        except Exception:  # the connection is gone or the client reads nothing: the answer ends
            self.client.leave("a heartbeat could not be sent")
        finally:
            self.sending_since = None
            self.last_sent = self.loop.time()
            self.beating = None

    async def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.beating is not None:
            self.beating.cancel()
            await asyncio.gather(self.beating, return_exceptions=True)
