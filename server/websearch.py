"""Web snippets from DuckDuckGo's Instant Answer API, fetched with aiohttp.

Every failure (rate limiting with 202, any other non-200, a body that is not JSON or is
too large or nested too deeply, a timeout, a network error, any other exception) gives no
snippets and a logged warning: the answer goes on without web context, and nothing is
cached. Text that is not valid Unicode (a lone surrogate escaped in the JSON) is replaced
with U+FFFD. Results are cached per query in a bounded LRU.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger("ozfig.websearch")

USER_AGENT = "ozfig/0.1 (+self-hosted chat server)"
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """`text` with every lone surrogate (which no UTF-8 encoder accepts) replaced by U+FFFD."""
    return _SURROGATE_RE.sub("\ufffd", text)


@dataclass(frozen=True)
class Snippet:
    text: str
    url: str

    def as_json(self) -> dict[str, str]:
        return {"url": self.url, "text": self.text}


class SearchFailed(Exception):
    """Internal: why a search gave nothing (logged, never shown to users)."""


def snippets_from_answer(data: Any, limit: int) -> list[Snippet]:
    """Snippets from an Instant Answer body, in order of usefulness, de-duplicated."""
    if not isinstance(data, dict):
        raise SearchFailed("the answer is not a JSON object")
    found: list[Snippet] = []

    def add(text: Any, url: Any) -> None:
        if isinstance(text, str) and text.strip():
            url = valid_unicode(url) if isinstance(url, str) else ""
            found.append(Snippet(text=valid_unicode(" ".join(text.split())), url=url))

    def add_topics(items: Any) -> None:
        if not isinstance(items, list):
            return
        for item in items:
            if not isinstance(item, dict):
                continue
            if "Topics" in item:
                add_topics(item["Topics"])
            else:
                add(item.get("Text"), item.get("FirstURL"))

    add(data.get("Answer"), data.get("AbstractURL"))
    add(data.get("AbstractText"), data.get("AbstractURL"))
    add(data.get("Definition"), data.get("DefinitionURL"))
    add_topics(data.get("RelatedTopics"))
    add_topics(data.get("Results"))
    seen: set[str] = set()
    unique: list[Snippet] = []
    for snippet in found:
        key = snippet.text.casefold()
        if key not in seen:
            seen.add(key)
            unique.append(snippet)
    return unique[:limit]


class SnippetCache:
    """Bounded LRU of query -> snippets, each entry fresh for `ttl` seconds."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._items: collections.OrderedDict[str, tuple[float, list[Snippet]]] = collections.OrderedDict()

    @staticmethod
    def key(query: str) -> str:
        return " ".join(query.split()).casefold()

    def get(self, query: str) -> list[Snippet] | None:
        key = self.key(query)
        item = self._items.get(key)
        if item is None:
            return None
        stored, snippets = item
        if time.monotonic() - stored > self.ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return snippets

    def put(self, query: str, snippets: list[Snippet]) -> None:
        if self.size <= 0:
            return
        key = self.key(query)
        self._items[key] = (time.monotonic(), snippets)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class WebSearch:
    """Fetches snippets; one aiohttp session for the app's life (`start`/`close`)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_bytes: int,
        max_snippets: int,
        cache_size: int,
        cache_ttl: float,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_snippets = max_snippets
        self.cache = SnippetCache(cache_size, cache_ttl)
        self.session: aiohttp.ClientSession | None = None
        self.failures = 0

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def snippets(self, query: str) -> list[Snippet]:
        if self.max_snippets == 0:
            return []
        cached = self.cache.get(query)
        if cached is not None:
            return cached
        try:
            result = await asyncio.wait_for(self._fetch(query), self.timeout)
        except Exception as exc:  # whatever went wrong on the web side, the answer goes on without it
            self.failures += 1
            if isinstance(exc, asyncio.TimeoutError):
                reason = "timed out"
            elif isinstance(exc, (SearchFailed, aiohttp.ClientError, UnicodeDecodeError, ValueError)):
                reason = str(exc) or type(exc).__name__
            else:
                reason = f"{type(exc).__name__}: {exc}"
            log.warning("web search for %r gave no snippets: %s", query[:80], reason[:300])
            return []
        self.cache.put(query, result)
        return result

    async def _fetch(self, query: str) -> list[Snippet]:
        if self.session is None:
            raise SearchFailed("the web search client is not started")
        params = {
            "q": query,
            "format": "json",
            "no_redirect": "1",
            "no_html": "1",
            "skip_disambig": "1",
            "t": "ozfig",
        }
        async with self.session.get(self.base_url, params=params) as resp:
            if resp.status != 200:
                raise SearchFailed(f"HTTP {resp.status}" + (" (rate limited)" if resp.status == 202 else ""))
            body = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                body += chunk
                if len(body) > self.max_bytes:
                    raise SearchFailed(f"the answer is larger than {self.max_bytes} bytes")
        try:
            data = json.loads(body.decode("utf-8"))
        except json.JSONDecodeError as exc:
            raise SearchFailed(f"the answer is not JSON ({exc.msg})") from None
        return snippets_from_answer(data, self.max_snippets)
