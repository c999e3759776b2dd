"""GET /: the chat page for browsers, the original's JSON hint for everyone else.

The choice is by `Accept`: HTML only when the client names text/html and prefers it to
JSON (browsers do; curl's `*/*`, API clients and the original's users get the hint).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

HINT = {"message": "Use /prompt/{query} to talk with the OzFig"}
PAGE = Path(__file__).resolve().parent.parent / "static" / "index.html"
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def quality(accept: str, media_type: str) -> float:
    """The q-value `accept` gives `media_type`, by its most specific matching range."""
    kind = media_type.split("/")[0]
    best, specificity = 0.0, -1
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        level = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media)
        if level is None or level < specificity:
            continue
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best, specificity = q, level
    return best


def wants_html(accept: str) -> bool:
    if "text/html" not in accept.lower():
        return False
    return quality(accept, "text/html") > quality(accept, "application/json")


@cache
def page_html() -> str:
    return PAGE.read_text(encoding="utf-8")


async def root(request: Request) -> Response:
    if wants_html(request.headers.get("accept", "")):
        return HTMLResponse(page_html(), headers=PAGE_HEADERS)
    return JSONResponse(HINT, headers={"Vary": "Accept"})
