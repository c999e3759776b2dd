"""Draining: stop taking work, let running answers finish, then exit 0.

On SIGTERM (or `POST /admin/drain`) the server starts draining: `/health` answers 503
`draining` so load balancers take it out of rotation. For the first `--drain-grace` seconds
new requests are still served (a balancer sends some until its checks have seen the 503:
refusing them would count on its retries); after that they get 503 + `Retry-After`, and the
requests already running go on. When they have all ended, or after
`--drain-timeout` seconds, whatever still runs is ended with a 503 (a JSON answer, or an
SSE `error` event on a stream), and the server is asked to exit (`on_exit`).

`Drain` also counts the requests in flight (the HTTP middleware calls `enter`/`leave`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ozfig.aio import within

log = logging.getLogger(__name__)

# after the deadline: how long the ended answers get to send their last bytes
FLUSH_SECONDS = 5.0


class Drain:
    def __init__(self, timeout: float, grace: float = 0.0) -> None:
        self.timeout = timeout
        self.grace = grace
        self.draining = False
        self.in_flight = 0
        self.started_at: float | None = None
        self.on_exit: Callable[[], None] = lambda: None
        self.abort: Callable[[str], None] = lambda reason: None  # ends what still runs (the engine's answers)
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # --- requests in flight ----------------------------------------------------------------

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self._changed is not None:
            self._changed.set()

    # --- draining ----------------------------------------------------------------------------

    @property
    def refusing(self) -> bool:
        """Whether new requests are refused: draining, and the grace is over."""
        return (
            self.draining and self.started_at is not None and time.monotonic() - self.started_at >= self.grace
        )

    def start(self, why: str) -> bool:
        """Begin draining (on the event loop's thread); False when it had already begun."""
        if self.draining:
            return False
        self.draining = True
        self.started_at = time.monotonic()
        self._changed = asyncio.Event()
        log.warning(
            "draining (%s): /health says so; new requests %s, then running ones get up to %gs to finish",
            why,
            f"served {self.grace:g}s more" if self.grace > 0 else "refused",
            self.timeout,
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ozfig-drain")
        return True

    async def _wait_idle(self, seconds: float) -> bool:
        assert self._changed is not None
        deadline = time.monotonic() + seconds
        while self.in_flight > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await within(self._changed.wait(), min(left, 1.0))
        return True

    async def _run(self) -> None:
        try:
            if self.grace > 0:
                await asyncio.sleep(self.grace)
                log.info("drain grace over: refusing new requests; %d running", self.in_flight)
            if await self._wait_idle(self.timeout):
                log.info("drained: no request was running")
            else:
                log.warning(
                    "drain timeout (%gs): ending %d running requests with 503", self.timeout, self.in_flight
                )
                self.abort("the server is shutting down; retry on another replica")
                if not await self._wait_idle(FLUSH_SECONDS):
                    log.warning("%d requests did not end after the drain timeout", self.in_flight)
        finally:
            self.on_exit()
