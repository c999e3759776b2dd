"""Reading an HTTP body with a byte cap."""

from __future__ import annotations

import aiohttp

from .errors import PageFailed


async def read_capped(resp: aiohttp.ClientResponse, max_bytes: int, *, truncate: bool) -> bytes:
    """At most `max_bytes` of the body: cut there when `truncate`, else PageFailed when larger."""
    body = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        body += chunk
        if len(body) > max_bytes:
            if truncate:
                return bytes(body[:max_bytes])
            raise PageFailed(f"the answer is larger than {max_bytes} bytes")
    return bytes(body)


def decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")
