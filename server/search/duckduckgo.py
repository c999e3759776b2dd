"""DuckDuckGo: the Instant Answer API (abstracts, definitions, related topics) and the HTML
results page (`html.duckduckgo.com/html/`, real web results), asked together.

The Instant Answer API answers `application/x-javascript`; it is not a web search and is
empty for most questions. The HTML page is parsed with lxml's HTML parser: each
`div.result` holds `a.result__a` (title; its href is a `//duckduckgo.com/l/?uddg=<url>`
redirect, decoded here) and `.result__snippet`; ads (`result--ad`, `duckduckgo.com/y.js`)
are dropped; "No results." is an empty list; a CAPTCHA/challenge page or HTTP 202/403/429
sends the endpoint into its cooldown.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import lxml.html

from .backend import Cooldown, clean, fetch_body, json_body
from .body import decode
from .errors import PageFailed, SearchFailed
from .hits import Hit

log = logging.getLogger(__name__)

_TOPIC_LINK_RE = re.compile(r"<a\b[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")
CHALLENGE_MARKERS = ("anomaly-modal", "challenge-form", "bots use duckduckgo too")


def topic_title(result: Any) -> str:
    """A related topic's name: the text of the link its `Result` HTML starts with."""
    match = _TOPIC_LINK_RE.search(result) if isinstance(result, str) else None
    return clean(html.unescape(_TAG_RE.sub("", match.group(1)))) if match else ""


def instant_answer_hits(data: Any) -> list[Hit]:
    """Hits from an Instant Answer body: answer, abstract, definition, related topics, results."""
    if not isinstance(data, dict):
        raise SearchFailed("the Instant Answer is not a JSON object")
    heading = clean(data.get("Heading"))
    found: list[Hit] = []

    def add(text: Any, url: Any, title: str) -> None:
        text = clean(text)
        if text:
            found.append(Hit(title=title, url=clean(url), snippet=text, readable=False))

    def add_topics(items: Any) -> None:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if "Topics" in item:
                add_topics(item["Topics"])
            else:
                add(item.get("Text"), item.get("FirstURL"), topic_title(item.get("Result")))

    add(data.get("Answer"), data.get("AbstractURL"), heading or "Answer")
    add(data.get("AbstractText"), data.get("AbstractURL"), heading or clean(data.get("AbstractSource")))
    add(
        data.get("Definition"), data.get("DefinitionURL"), clean(data.get("DefinitionSource")) or "Definition"
    )
    add_topics(data.get("RelatedTopics"))
    add_topics(data.get("Results"))
    seen: set[str] = set()
    unique = []
    for hit in found:
        if hit.snippet.casefold() not in seen:
            seen.add(hit.snippet.casefold())
            unique.append(hit)
    return unique


def has_class(element: Any, name: str) -> bool:
    return name in (element.get("class") or "").split()


def result_url(href: str) -> str:
    """The target of a result link: `//duckduckgo.com/l/?uddg=<url>&rut=...` decoded."""
    parts = urlsplit(href if "//" not in href[:2] else "https:" + href)
    if parts.path == "/l/" and parts.netloc.endswith("duckduckgo.com"):
        target = parse_qs(parts.query).get("uddg")
        return target[0] if target else ""
    return href


def is_challenge(html: str) -> bool:
    lowered = html.casefold()
    return any(marker in lowered for marker in CHALLENGE_MARKERS)


def html_results(html: str) -> list[Hit]:
    """Web results from the HTML results page; SearchFailed for a challenge page."""
    if is_challenge(html):
        raise SearchFailed("answered with a CAPTCHA/challenge page", cooldown=True)
    try:
        doc = lxml.html.document_fromstring(html)
    except Exception as exc:  # lxml's ParserError for an empty or broken document
        raise SearchFailed(f"the results page could not be parsed ({exc})") from None
    hits: list[Hit] = []
    for result in doc.iter("div"):
        if not has_class(result, "result") or has_class(result, "result--ad"):
            continue
        link = next((a for a in result.iter("a") if has_class(a, "result__a")), None)
        if link is None:
            continue
        url = result_url(link.get("href") or "")
        if not url.startswith(("http://", "https://")) or "duckduckgo.com/y.js" in url:
            continue  # an ad, or a link that is not a web page
        snippet = next((e for e in result.iter() if has_class(e, "result__snippet")), None)
        hits.append(
            Hit(
                title=clean(link.text_content()),
                url=url,
                snippet=clean(snippet.text_content()) if snippet is not None else "",
            )
        )
    return hits


class DuckDuckGo:
    """The `duckduckgo` backend: web results first, then the Instant Answer's snippets.

    Both endpoints are asked at once; what one of them has answered by the timeout is used.
    """

    name = "duckduckgo"

    def __init__(self, api_url: str, html_url: str, *, max_bytes: int, cooldown: float) -> None:
        self.api_url = api_url
        self.html_url = html_url
        self.max_bytes = max_bytes
        self.api_rest = Cooldown("DuckDuckGo's Instant Answer API", cooldown)
        self.html_rest = Cooldown("DuckDuckGo's HTML results page", cooldown)

    async def search(self, session: aiohttp.ClientSession, query: str, timeout: float) -> list[Hit]:
        tasks = [
            asyncio.ensure_future(self._html(session, query)),
            asyncio.ensure_future(self._instant(session, query)),
        ]
        try:
            await asyncio.wait(tasks, timeout=timeout)
        finally:
            late = [task for task in tasks if not task.done()]
            for task in late:
                task.cancel()
        hits: list[Hit] = []
        failures: list[str] = []
        for task in tasks:
            error = None if task in late else task.exception()
            if task in late:
                failures.append("timed out")
            elif isinstance(error, SearchFailed | aiohttp.ClientError | PageFailed | ValueError):
                failures.append(str(error) or type(error).__name__)
            elif error is not None:  # whatever else went wrong (JSON nested too deeply, ...)
                failures.append(f"{type(error).__name__}: {error}"[:300])
            else:
                hits.extend(task.result())
        if len(failures) == 2:
            raise SearchFailed("; ".join(failures))
        for failure in failures:
            log.warning("DuckDuckGo: one of two endpoints gave nothing: %s", failure)
        seen: set[str] = set()
        unique = []
        for hit in hits:
            key = hit.url or hit.snippet
            if key not in seen:
                seen.add(key)
                unique.append(hit)
        return unique

    async def _instant(self, session: aiohttp.ClientSession, query: str) -> list[Hit]:
        params = {
            "q": query,
            "format": "json",
            "no_redirect": "1",
            "no_html": "1",
            "skip_disambig": "1",
            "t": "ozfig",
        }
        body, _ = await fetch_body(
            self.api_rest,
            lambda: session.get(self.api_url, params=params),
            what="Instant Answer API",
            max_bytes=self.max_bytes,
        )
        return instant_answer_hits(json_body(body, "the Instant Answer"))

    async def _html(self, session: aiohttp.ClientSession, query: str) -> list[Hit]:
        body, charset = await fetch_body(
            self.html_rest,
            lambda: session.post(self.html_url, data={"q": query, "b": ""}),
            what="results page",
            max_bytes=self.max_bytes,
        )
        html = decode(body, charset)
        try:
            return html_results(html)
        except SearchFailed as exc:
            if exc.cooldown:
                raise self.html_rest.rest(str(exc)) from None
            raise
