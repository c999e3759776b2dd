"""A local stand-in for a SearXNG instance's JSON API (`GET /search?q=...&format=json`).

`results[query]` gives the results (url, title, content); `mode` "403" answers as an
instance whose settings.yml does not enable the json format.
"""

from __future__ import annotations

from aiohttp import web

from .fixture_server import ThreadedApp


class FakeSearXNG(ThreadedApp):
    def __init__(self) -> None:
        super().__init__("127.0.0.1")
        self.mode = "results"
        self.queries: list[str] = []
        self.results: dict[str, list[tuple[str, str, str]]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/search", self._search)
        return app

    async def _search(self, request: web.Request) -> web.StreamResponse:
        query = request.query.get("q", "")
        self.queries.append(query)
        if self.mode == "403" or request.query.get("format") != "json":
            return web.Response(status=403, text="403 Forbidden")
        results = [
            {"url": url, "title": title, "content": content, "engine": "fake", "score": 1.0 / (i + 1)}
            for i, (title, url, content) in enumerate(self.results.get(query, []))
        ]
        body = {
            "query": query,
            "number_of_results": len(results),
            "results": results,
            "answers": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }
        return web.json_response(body)
