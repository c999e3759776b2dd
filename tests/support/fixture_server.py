"""An aiohttp application served from its own thread and event loop, on a random port.

The fixture servers (fake DuckDuckGo, fake SearXNG, fake web pages) are built on it, so
that tests and benchmarks talk to them over real sockets, on loopback only.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


class ThreadedApp:
    """`start()` serves `self.app()` on `host`, port 0; `stop()` ends it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.stopping = False
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)

    def app(self) -> web.Application:
        raise NotImplementedError

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Any:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def stop(self) -> None:
        self.stopping = True

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, cut short when the server stops."""
        end = self._loop.time() + seconds
        while not self.stopping and self._loop.time() < end:
            await asyncio.sleep(0.05)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.app(), access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()
