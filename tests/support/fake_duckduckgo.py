"""A local stand-in for DuckDuckGo: the Instant Answer API (`GET /`) and the HTML results
page (`POST /html/`), on one random port of 127.0.0.1, from its own thread.

Instant Answer: bodies of the documented shapes (`application/x-javascript`, every key
present); `mode` makes it misbehave: "article", "empty", "disambiguation", "202", "500",
"garbage", "huge" or "hang", or one query gets a body of its own, as JSON (`overrides`)
or as raw bytes (`raw_overrides`). HTML page: the markup DuckDuckGo serves (`div.result`,
`a.result__a` with `//duckduckgo.com/l/?uddg=` links, `a.result__snippet`, an ad first);
results come from `results[query]` (else the "No results." page); `html_mode` "challenge"
serves the CAPTCHA page, "202" an empty 202, "hang" never answers. Each endpoint records
the queries it was asked (`queries`, `html_queries`).
"""

from __future__ import annotations

import html
import json
import threading
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .fixture_server import ThreadedApp

EMPTY: dict[str, Any] = {
    "Abstract": "",
    "AbstractSource": "",
    "AbstractText": "",
    "AbstractURL": "",
    "Answer": "",
    "AnswerType": "",
    "Definition": "",
    "DefinitionSource": "",
    "DefinitionURL": "",
    "Entity": "",
    "Heading": "",
    "Image": "",
    "ImageHeight": "",
    "ImageIsLogo": "",
    "ImageWidth": "",
    "Infobox": "",
    "Redirect": "",
    "RelatedTopics": [],
    "Results": [],
    "Type": "",
    "meta": {},
}


def topic(text: str, url: str) -> dict[str, Any]:
    return {
        "FirstURL": url,
        "Icon": {"URL": "", "Height": "", "Width": ""},
        "Result": f'<a href="{url}">{text.split(" ")[0]}</a>{text}',
        "Text": text,
    }


def article(query: str) -> dict[str, Any]:
    body = dict(EMPTY)
    body.update(
        {
            "Heading": f"{query} (topic)",
            "AbstractSource": "Wikipedia",
            "AbstractText": f"{query} is a subject with a long history. Fake abstract about {query}.",
            "AbstractURL": "https://fake.example/wiki/abstract",
            "Abstract": f"<b>{query}</b> is a subject",
            "Entity": "topic",
            "Type": "A",
            "Image": "/i/abc.png",
            "ImageHeight": 200,
            "ImageWidth": 200,
            "ImageIsLogo": 0,
            "Infobox": {
                "content": [
                    {"data_type": "string", "label": "Designed by", "value": {"id": "x"}, "wiki_order": "0"}
                ],
                "meta": [],
            },
            "RelatedTopics": [
                topic(f"{query} related one: a first related fact.", "https://fake.example/related/1"),
                topic(f"{query} related two: a second related fact.", "https://fake.example/related/2"),
                {
                    "Name": "See also",
                    "Topics": [topic("Nested topic: a fact from a group.", "https://fake.example/nested/1")],
                },
                topic(
                    f"{query} related one: a first related fact.", "https://fake.example/related/duplicate"
                ),
            ],
            "Results": [
                {
                    "FirstURL": "https://fake.example/official",
                    "Icon": {"Height": 16, "URL": "/i/x.ico", "Width": 16},
                    "Result": "<a>Official site</a>",
                    "Text": "Official site",
                }
            ],
        }
    )
    return body


def disambiguation(query: str) -> dict[str, Any]:
    body = dict(EMPTY)
    body.update(
        {
            "Heading": query,
            "Type": "D",
            "RelatedTopics": [
                topic(f"{query} A way for two programs to communicate.", "https://fake.example/d/1"),
                {
                    "Name": "See also",
                    "Topics": [topic("Something else entirely.", "https://fake.example/d/2")],
                },
            ],
        }
    )
    return body


AD = (
    '<div class="result results_links results_links_deep result--ad result--ad--small">'
    '<div class="links_main links_deep result__body"><h2 class="result__title">'
    '<a class="result__a" rel="noopener" href="https://duckduckgo.com/y.js?ad_domain=shop.example&amp;u3=x">'
    "Buy things now</a></h2>"
    '<a class="result__snippet" href="https://duckduckgo.com/y.js?ad_domain=shop.example">An ad.</a>'
    "</div></div>"
)
NO_RESULTS = (
    '<div class="result results_links results_links_deep result--no-result">'
    '<div class="no-results">No  results.</div></div>'
)
CHALLENGE = (
    '<!DOCTYPE html><html><body><div class="anomaly-modal__mask"><div class="anomaly-modal__modal">'
    '<div class="anomaly-modal__title">Unfortunately, bots use DuckDuckGo too.</div>'
    '<form id="challenge-form" action="//duckduckgo.com/anomaly.js?sv=html" method="POST"></form>'
    "</div></div></body></html>"
)


def result_html(title: str, url: str, snippet: str) -> str:
    link = "//duckduckgo.com/l/?uddg=" + quote(url, safe="") + "&amp;rut=0123abcd"
    return (
        '<div class="result results_links results_links_deep web-result ">'
        '<div class="links_main links_deep result__body"><h2 class="result__title">'
        f'<a rel="nofollow" class="result__a" href="{link}">{html.escape(title)}</a></h2>'
        '<div class="result__extras"><div class="result__extras__url">'
        f'<a class="result__url" href="{link}">{html.escape(url)}</a></div></div>'
        f'<a class="result__snippet" href="{link}">{html.escape(snippet)}</a>'
        "</div></div>"
    )


def results_page(query: str, results: list[tuple[str, str, str]] | None) -> str:
    items = AD + "".join(result_html(*r) for r in results) if results else NO_RESULTS
    return (
        "<!DOCTYPE html><html><head><title>"
        f"{html.escape(query)} at DuckDuckGo</title></head><body>"
        '<div id="links" class="results">' + items + "</div></body></html>"
    )


class FakeDuckDuckGo(ThreadedApp):
    def __init__(self) -> None:
        super().__init__("127.0.0.1")
        self.mode = "article"
        self.html_mode = "results"
        self.queries: list[str] = []
        self.html_queries: list[str] = []
        self.results: dict[str, list[tuple[str, str, str]]] = {}
        self.huge_bytes = 5_000_000
        self.overrides: dict[str, dict[str, Any]] = {}
        self.raw_overrides: dict[str, bytes] = {}
        self.dropped: list[str] = []  # queries whose client closed the connection while it hung

    @property
    def url(self) -> str:
        return f"{self.base}/"

    @property
    def html_url(self) -> str:
        return f"{self.base}/html/"

    def reset(self) -> None:
        self.mode = "article"
        self.html_mode = "results"
        self.queries.clear()
        self.html_queries.clear()
        self.results.clear()
        self.overrides.clear()
        self.raw_overrides.clear()
        self.dropped.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._handle)
        app.router.add_post("/html/", self._html)
        return app

    async def _html(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        query = str(form.get("q", ""))
        self.html_queries.append(query)
        mode = self.html_mode
        if mode == "202":
            return web.Response(status=202, body=b"")
        if mode == "hang":
            await self.pause(3600)
        if mode == "challenge":
            return web.Response(status=200, text=CHALLENGE, content_type="text/html")
        return web.Response(text=results_page(query, self.results.get(query)), content_type="text/html")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        query = request.query.get("q", "")
        self.queries.append(query)
        mode = self.mode
        if mode == "202":
            return web.Response(status=202, body=b"")
        if mode == "500":
            return web.Response(status=500, text="internal error")
        if mode == "garbage":
            return web.Response(status=200, body=b"<html>not json", content_type="application/x-javascript")
        if mode == "hang":  # until reset, stopped or the client leaves, an hour at most
            for _ in range(36000):
                if self.mode != "hang" or self.stopping:
                    break
                if request.transport is None or request.transport.is_closing():
                    self.dropped.append(query)
                    break
                await self.pause(0.1)
        if mode == "huge":
            text = "x" * self.huge_bytes
            body = json.dumps({**EMPTY, "AbstractText": text}).encode()
            return web.Response(status=200, body=body, content_type="application/x-javascript")
        if query in self.raw_overrides:
            return web.Response(
                status=200, body=self.raw_overrides[query], content_type="application/x-javascript"
            )
        if query in self.overrides:
            data = self.overrides[query]
        elif mode == "empty":
            data = dict(EMPTY)
        elif mode == "disambiguation":
            data = disambiguation(query)
        else:
            data = article(query)
        return web.Response(
            status=200, body=json.dumps(data).encode(), content_type="application/x-javascript"
        )


if __name__ == "__main__":
    fake = FakeDuckDuckGo().start()
    print(fake.url, flush=True)
    threading.Event().wait()
