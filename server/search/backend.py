"""The search backend interface, what backends share, and the `none` backend.

A backend turns a query into hits: `await backend.search(session, query, timeout)` -> `[Hit]`
within `timeout` seconds, or SearchFailed.
An endpoint that answers 202, 403 or 429, or with a challenge page, rests for the cooldown:
no request is sent to it until then. `fetch_body` is that sequence for every endpoint: the
cooldown check, the request, the statuses, the capped body.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import aiohttp

from .body import read_capped
from .errors import SearchFailed
from .hits import Hit

log = logging.getLogger(__name__)

USER_AGENT = "Mozilla/5.0 (compatible; ozfig/0.1; +self-hosted chat server)"
BACKOFF_STATUSES = (202, 403, 429)


class SearchBackend(Protocol):
    name: str

    async def search(self, session: aiohttp.ClientSession, query: str, timeout: float) -> list[Hit]: ...


class NoSearch:
    name = "none"

    async def search(self, session: aiohttp.ClientSession, query: str, timeout: float) -> list[Hit]:
        return []


class Cooldown:
    """Whether an endpoint is resting after it asked us to back off."""

    def __init__(self, name: str, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.seconds = seconds
        self.clock = clock
        self.until = 0.0

    def check(self) -> None:
        """SearchFailed while resting."""
        left = self.until - self.clock()
        if left > 0:
            raise SearchFailed(f"{self.name} is resting for {left:.0f} s more after it asked to back off")

    def rest(self, reason: str) -> SearchFailed:
        self.until = self.clock() + self.seconds
        log.warning("%s %s: no requests to it for %.0f s", self.name, reason, self.seconds)
        return SearchFailed(f"{self.name} {reason}", cooldown=True)


async def fetch_body(
    rest: Cooldown,
    send: Callable[[], AbstractAsyncContextManager[aiohttp.ClientResponse]],
    *,
    what: str,
    max_bytes: int,
    backoff: Mapping[int, str] | None = None,
) -> tuple[bytes, str | None]:
    """The body (capped at `max_bytes`) and charset of an endpoint's 200 answer to `send()`.

    SearchFailed while `rest` is resting; when the endpoint asks to back off (HTTP 202, 403 or
    429: it rests, for the reason `backoff` gives for the status, else "answered HTTP <status>");
    and for any other status but 200 ("<what>: HTTP <status>").
    """
    rest.check()
    async with send() as resp:
        if resp.status in BACKOFF_STATUSES:
            raise rest.rest((backoff or {}).get(resp.status, f"answered HTTP {resp.status}"))
        if resp.status != 200:
            raise SearchFailed(f"{what}: HTTP {resp.status}")
        return await read_capped(resp, max_bytes, truncate=False), resp.charset


def json_body(body: bytes, what: str) -> Any:
    """A UTF-8 JSON body; SearchFailed ("<what> is not JSON") otherwise."""
    try:
        return json.loads(body.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SearchFailed(f"{what} is not JSON ({exc})") from None


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def clean(text: object) -> str:
    """Whitespace-collapsed text; a lone surrogate (a JSON escape no UTF-8 encoder takes) becomes U+FFFD."""
    return _SURROGATE_RE.sub("\ufffd", " ".join(text.split())) if isinstance(text, str) else ""
