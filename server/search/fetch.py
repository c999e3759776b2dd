"""Reading result pages: one aiohttp session, guarded against SSRF, bounded in time and size.

Every request goes through `AddressGuard` (see guard.py): the URL before each hop, the
addresses after DNS resolution, the socket before it connects. Redirects are followed by
hand (at most `MAX_REDIRECTS`), so each new URL is checked like the first. No proxy is taken
from the environment. Only `text/html` (and XHTML) is read, and at most `max_bytes` of it;
a longer page is cut there. A few pages are read at a time, one connection per host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from .body import decode, read_capped
from .errors import PageFailed, PageRefused
from .guard import AddressGuard, GuardedResolver, GuardedSockets

log = logging.getLogger(__name__)

USER_AGENT = "Mozilla/5.0 (compatible; ozfig/0.1; +self-hosted chat server)"
MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 2.0
CONCURRENCY = 4
HTML_TYPES = ("text/html", "application/xhtml+xml")
REDIRECTS = (301, 302, 303, 307, 308)


class PageFetcher:
    """`await fetcher.html(url, timeout)` -> the page's HTML; PageRefused / PageFailed otherwise."""

    def __init__(
        self,
        guard: AddressGuard,
        *,
        max_bytes: int,
        resolver: AbstractResolver | None = None,
        observe_connect: Callable[[str], None] | None = None,
    ) -> None:
        self.guard = guard
        self.max_bytes = max_bytes
        self.resolver = resolver
        self.sockets = GuardedSockets(guard, observe_connect)
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.resolver or aiohttp.ThreadedResolver(), self.guard),
            socket_factory=self.sockets.factory,
            limit=CONCURRENCY,
            limit_per_host=1,
            ttl_dns_cache=60,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,  # never a proxy from the environment: it would see past the guard
            headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"},
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def html(self, url: str, timeout: float) -> str:
        if self.session is None:
            raise PageFailed("the page reader is not started")
        try:
            current = URL(url)
        except ValueError:
            raise PageRefused(f"not a URL: {url[:100]!r}") from None
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, CONNECT_TIMEOUT))
        for _ in range(MAX_REDIRECTS + 1):
            self.guard.check_url(current)
            async with self.session.get(current, allow_redirects=False, timeout=limits) as resp:
                if resp.status in REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise PageFailed(f"HTTP {resp.status} without a Location")
                    current = current.join(URL(location))
                    continue
                if resp.status != 200:
                    raise PageFailed(f"HTTP {resp.status}")
                if resp.content_type not in HTML_TYPES:
                    raise PageFailed(f"{resp.content_type or 'no content type'} is not HTML")
                body = await read_capped(resp, self.max_bytes, truncate=True)
                return decode(body, resp.charset)
        raise PageFailed(f"more than {MAX_REDIRECTS} redirects")
