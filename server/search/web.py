"""`WebSearch`: search, read the top pages, rank their passages; one deadline, never raising.

`await search.passages(query)` runs within `timeout` seconds in all: the backend's hits
(cached per backend and query), then the `read_pages` best readable hits read at once
(cached per URL) and their main text extracted; whatever is not read by the deadline is
represented by its snippet. Every failure is logged and gives fewer passages, never an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import aiohttp
from aiohttp.abc import AbstractResolver

from ozfig.aio import within

from .backend import USER_AGENT, NoSearch, SearchBackend
from .cache import TTLCache, memory_bytes, normalized_query
from .duckduckgo import DuckDuckGo
from .errors import PageFailed, PageRefused, SearchFailed
from .extract import extract_text_async, run_in_pool
from .fetch import PageFetcher
from .guard import AddressGuard, parse_networks, parse_ports
from .hits import Hit, Passage
from .rank import rank_passages
from .searxng import SearXNG

log = logging.getLogger(__name__)

PAGE_TTL = 6 * 3600.0
FAILURE_TTL = 60.0
PAGE_CACHE_BYTES = 64_000_000
EXPECTED_ERRORS = (SearchFailed, PageFailed, PageRefused, aiohttp.ClientError, ValueError, OSError)


def describe(exc: Exception) -> str:
    """A log line's reason: the message of an expected failure, the type too for anything else."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, EXPECTED_ERRORS):
        return (str(exc) or type(exc).__name__)[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def outcome_of(exc: Exception) -> str:
    """How /metrics counts a failed search."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, SearchFailed) and exc.cooldown:
        return "rate_limited"
    return "error"


def make_backend(
    kind: str, *, search_url: str, html_url: str, searxng_url: str, max_bytes: int, cooldown: float
) -> SearchBackend:
    if kind == "duckduckgo":
        return DuckDuckGo(search_url, html_url, max_bytes=max_bytes, cooldown=cooldown)
    if kind == "searxng":
        if not searxng_url:
            raise ValueError("--search searxng needs --searxng-url (the instance's base URL)")
        return SearXNG(searxng_url, max_bytes=max_bytes, cooldown=cooldown)
    return NoSearch()


class WebSearch:
    """The server's web search; `start`/`close` bracket the app's life."""

    def __init__(
        self,
        backend: SearchBackend,
        *,
        timeout: float,
        max_bytes: int,
        read_pages: int,
        cache_size: int,
        cache_ttl: float,
        page_cache_size: int,
        fetch_allow: Sequence[str] = (),
        fetch_ports: Sequence[str | int] = (),
        resolver: AbstractResolver | None = None,
        observe_connect: Callable[[str], None] | None = None,
    ) -> None:
        self.backend = backend
        self.timeout = timeout
        self.read_pages = read_pages
        self.cache_ttl = cache_ttl
        self.hits_cache: TTLCache[list[Hit]] = TTLCache(cache_size)
        self.page_cache: TTLCache[str] = TTLCache(
            page_cache_size, max_bytes=PAGE_CACHE_BYTES, size=memory_bytes
        )
        self.fetcher = PageFetcher(
            AddressGuard(parse_networks(fetch_allow), parse_ports(fetch_ports)),
            max_bytes=max_bytes,
            resolver=resolver,
            observe_connect=observe_connect,
        )
        self.session: aiohttp.ClientSession | None = None
        self.failures = 0
        # told each search's outcome (ok, empty, cached, timeout, rate_limited, error) and seconds
        self.observe: Callable[[str, float | None], None] = lambda outcome, seconds: None

    @property
    def enabled(self) -> bool:
        return not isinstance(self.backend, NoSearch)

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, trust_env=False)
        await self.fetcher.start()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        await self.fetcher.close()

    async def passages(self, query: str) -> list[Passage]:
        """Passages for `query`, best first; [] when search is off or everything failed."""
        if not self.enabled or not query.strip():
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        hits = await self.hits(query, deadline)
        if not hits:
            return []
        documents = await self.read(hits, deadline)
        return await run_in_pool(rank_passages, query, documents)

    async def hits(self, query: str, deadline: float) -> list[Hit]:
        key = f"{self.backend.name}\x00{normalized_query(query)}"
        cached = self.hits_cache.get(key)
        if cached is not None:
            self.observe("cached", None)
            return cached
        if self.session is None:
            raise RuntimeError("WebSearch.start() was not awaited")
        started = asyncio.get_running_loop().time()
        remaining = deadline - started
        try:
            hits = await within(self.backend.search(self.session, query, remaining), remaining + 0.2)
        except Exception as exc:  # whatever went wrong on the web side, the answer goes on without it
            self.failures += 1
            reason = describe(exc)
            log.warning("web search for %r gave no results: %s", query[:80], reason)
            self.observe(outcome_of(exc), asyncio.get_running_loop().time() - started)
            self.hits_cache.put(key, [], FAILURE_TTL)
            return []
        self.observe("ok" if hits else "empty", asyncio.get_running_loop().time() - started)
        self.hits_cache.put(key, hits, self.cache_ttl)
        return hits

    async def read(self, hits: Sequence[Hit], deadline: float) -> list[tuple[Hit, str]]:
        """(hit, text) for every hit: page text for the best readable ones read in time, else the snippet."""
        to_read = [h for h in hits if h.readable][: self.read_pages]
        tasks = {hit: asyncio.ensure_future(self.page_text(hit.url, deadline)) for hit in to_read}
        if tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            _, late = await asyncio.wait(tasks.values(), timeout=max(remaining, 0.0))
            for task in late:
                task.cancel()
            if late:
                log.info("%d of %d pages were not read by the deadline", len(late), len(tasks))
        documents = []
        for hit in hits:
            reader = tasks.get(hit)
            text = reader.result() if reader is not None and reader.done() and not reader.cancelled() else ""
            documents.append((hit, text or hit.snippet))
        return documents

    async def page_text(self, url: str, deadline: float) -> str:
        cached = self.page_cache.get(url)
        if cached is not None:
            return cached
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            html = await self.fetcher.html(url, remaining)
            text = await extract_text_async(html)
        except Exception as exc:  # a page that cannot be read is left out, whatever the reason
            reason = describe(exc)
            log.info("page %s not read: %s", url[:200], reason)
            self.page_cache.put(url, "", FAILURE_TTL)
            return ""
        self.page_cache.put(url, text, PAGE_TTL if text else FAILURE_TTL)
        return text
