"""GET /: the chat page for browsers, the original's JSON hint for everyone else; and the
page's scripts under /static/ (its own, and the vendored markdown renderer and sanitizer).

The choice is by `Accept`: HTML only when the client names text/html and prefers it to
JSON (browsers do; curl's `*/*`, API clients and the original's users get the hint).
The page's Content-Security-Policy allows scripts from the server itself only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ozfig.errors import NotFoundError

HINT = {"message": "Use /prompt/{query} to talk with the OzFig"}
STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE = STATIC / "index.html"
SCRIPTS = ("chat.js", "vendor/marked.umd.js", "vendor/purify.min.js")
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
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


@cache
def script(name: str) -> bytes:
    return (STATIC / name).read_bytes()


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in SCRIPTS:
        raise NotFoundError(f"no static file {name!r}")
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(script(name), media_type="text/javascript", headers=headers)


async def root(request: Request) -> Response:
    if wants_html(request.headers.get("accept", "")):
        return HTMLResponse(page_html(), headers=PAGE_HEADERS)
    return JSONResponse(HINT, headers={"Vary": "Accept"})
