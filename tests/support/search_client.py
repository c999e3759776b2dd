"""A WebSearch wired to the fixture servers: the tests' resolver, a connection recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from server.search import WebSearch
from server.search.backend import SearchBackend
from server.search.duckduckgo import DuckDuckGo

from .fake_duckduckgo import FakeDuckDuckGo
from .fake_web import RecordingResolver

T = TypeVar("T")

# names the tests' pages use; each resolves without any DNS query leaving the machine
HOSTS = {
    "pages.test": "127.0.0.2",
    "other.test": "127.0.0.2",
    "loopback.test": "127.0.0.1",
    "private.test": "10.0.0.1",
    "metadata.test": "169.254.169.254",
    "mixed.test": "127.0.0.2",  # see test_guard: replaced per test
    "mapped.test": "::ffff:127.0.0.1",
}


class Recorded:
    """What a WebSearch tried: names looked up, addresses connected to."""

    def __init__(self) -> None:
        self.resolver = RecordingResolver(dict(HOSTS))
        self.connects: list[str] = []


def duckduckgo(ddg: FakeDuckDuckGo, cooldown: float = 60.0) -> DuckDuckGo:
    return DuckDuckGo(ddg.url, ddg.html_url, max_bytes=1_000_000, cooldown=cooldown)


def make_search(backend: SearchBackend, recorded: Recorded | None = None, **overrides: Any) -> WebSearch:
    recorded = recorded or Recorded()
    options: dict[str, Any] = dict(
        timeout=3.0,
        max_bytes=1_000_000,
        read_pages=3,
        cache_size=0,
        cache_ttl=60.0,
        page_cache_size=0,
        fetch_allow=("127.0.0.2/32",),
        resolver=recorded.resolver,
        observe_connect=recorded.connects.append,
    )
    options.update(overrides)
    return WebSearch(backend, **options)


def run_with(search: WebSearch, work: Callable[[WebSearch], Awaitable[T]]) -> T:
    async def go() -> T:
        await search.start()
        try:
            return await work(search)
        finally:
            await search.close()

    return asyncio.run(go())
