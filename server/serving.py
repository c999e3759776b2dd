"""uvicorn as ozfig runs it: signals drain, and its own refusals speak JSON.

`DrainingServer` turns the first SIGTERM or SIGINT into a drain (see `drain.py`) instead of
uvicorn's immediate shutdown, and exits 0 once drained; a second signal stops at once, as
uvicorn does. uvicorn answers requests past `limit_concurrency` itself, with a plain-text
503, without calling the app; `json_refusals` makes that answer the documented JSON error.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import signal
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from ozfig.errors import ConcurrencyLimitError

from .api.gate import request_id_of
from .api.http_errors import answer_for_ozfig_error, error_body
from .drain import Drain

log = logging.getLogger(__name__)

DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# the modules of uvicorn's HTTP protocols that answer past the concurrency limit
_PROTOCOL_MODULES = (
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.zttp_impl",
    "uvicorn.protocols.http.zttp_h2_impl",
)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        drain.on_exit = self._drained

    async def serve(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig in DRAIN_SIGNALS and not self.drain.draining and self._loop is not None and self.started:
            self._loop.call_soon_threadsafe(self.drain.start, signal.Signals(sig).name)
            return
        super().handle_exit(sig, frame)  # a second signal, or before startup: stop now

    def _drained(self) -> None:
        self.should_exit = True


def json_refusals(on_refusal: Callable[[int, str], None] = lambda status, code: None) -> None:
    """Make uvicorn's concurrency-limit 503 the documented JSON error (with Retry-After)."""

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        answer = answer_for_ozfig_error(
            ConcurrencyLimitError("the server has too many connections open; retry shortly", retry_after=1)
        )
        on_refusal(answer.status, answer.code)
        payload = json.dumps(error_body(scope.get("path", "/"), answer)).encode("utf-8")
        rid = request_id_of(Headers(scope=scope))
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"retry-after", str(answer.headers["Retry-After"] if answer.headers else 1).encode()),
                    (b"x-request-id", rid.encode("ascii")),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    for name in _PROTOCOL_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a protocol whose parser is not installed
            continue
        if hasattr(module, "service_unavailable"):
            setattr(module, "service_unavailable", refuse)  # noqa: B010  (a module global of uvicorn)
