"""The main text of an HTML page, with trafilatura, in a worker thread.

Extraction is CPU work (tens of milliseconds for a typical page, more for a large one), so
it runs in a small thread pool of its own, never on the event loop and never crowding the
threads that other work uses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import trafilatura

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_TEXT_CHARS = 100_000

_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="ozfig-extract")


def extract_text(html: str) -> str:
    """The page's main text (paragraphs on their own lines), '' when it has none."""
    # deduplicate stays off: trafilatura's is one process-wide filter that drops a page it has
    # seen before, so the second reader of a page would get nothing
    try:
        text = trafilatura.extract(
            html, include_comments=False, include_tables=True, include_links=False, deduplicate=False
        )
    except Exception as exc:  # trafilatura parses hostile input; any failure = no text
        log.debug("extraction failed: %s", exc)
        return ""
    return (text or "")[:MAX_TEXT_CHARS]


async def extract_text_async(html: str) -> str:
    return await run_in_pool(extract_text, html)


async def run_in_pool(func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` in the extraction pool (ranking is CPU work too)."""
    return await asyncio.get_running_loop().run_in_executor(_pool, func, *args)
