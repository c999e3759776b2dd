"""SearXNG: a self-hosted metasearch instance's JSON API (`<base>/search?q=...&format=json`).

An instance answers 403 to `format=json` unless `json` is listed in `search.formats` of its
settings.yml; that is said in the log, and the backend rests for the cooldown.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from .backend import Cooldown, clean, fetch_body, json_body
from .errors import SearchFailed
from .hits import Hit

_JSON_REFUSED = (
    "refused format=json (HTTP 403): add `json` to `search: formats:` in the instance's settings.yml"
)


def searxng_hits(data: Any) -> list[Hit]:
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise SearchFailed("the SearXNG answer has no results list")
    hits = []
    for item in data["results"]:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            hits.append(
                Hit(title=clean(item.get("title")), url=clean(url), snippet=clean(item.get("content")))
            )
    return hits


class SearXNG:
    name = "searxng"

    def __init__(self, base_url: str, *, max_bytes: int, cooldown: float) -> None:
        self.url = base_url.rstrip("/") + "/search"
        self.max_bytes = max_bytes
        self.rest = Cooldown(f"SearXNG at {base_url}", cooldown)

    async def search(self, session: aiohttp.ClientSession, query: str, timeout: float) -> list[Hit]:
        limit = aiohttp.ClientTimeout(total=timeout)
        body, _ = await fetch_body(
            self.rest,
            lambda: session.get(self.url, params={"q": query, "format": "json"}, timeout=limit),
            what="SearXNG",
            max_bytes=self.max_bytes,
            backoff={403: _JSON_REFUSED},
        )
        return searxng_hits(json_body(body, "the SearXNG answer"))
