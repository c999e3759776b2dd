"""A local stand-in for DuckDuckGo's Instant Answer API (aiohttp, random port, own thread).

It answers with bodies of the documented shapes (`application/x-javascript`, every key
present), records each query it was asked, and can misbehave on demand: set `mode` to
"article", "empty", "disambiguation", "202", "500", "garbage", "huge" or "hang", or give
one query a body of your own, as JSON (`overrides`) or as raw bytes (`raw_overrides`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

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


class FakeDuckDuckGo:
    def __init__(self) -> None:
        self.mode = "article"
        self.queries: list[str] = []
        self.huge_bytes = 5_000_000
        self.overrides: dict[str, dict[str, Any]] = {}
        self.raw_overrides: dict[str, bytes] = {}
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-duckduckgo", daemon=True)
        self.port = 0
        self._stopping = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> FakeDuckDuckGo:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        self._stopping = True

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        self.mode = "article"
        self.queries.clear()
        self.overrides.clear()
        self.raw_overrides.clear()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()

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
        if mode == "hang":  # until reset or stopped, an hour at most
            for _ in range(36000):
                if self.mode != "hang" or self._stopping:
                    break
                await asyncio.sleep(0.1)
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
