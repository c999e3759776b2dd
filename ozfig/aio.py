"""asyncio helpers the standard library gets subtly wrong.

`within(awaitable, seconds)` is `asyncio.wait_for` without its Python 3.10/3.11 flaw: there, a
task cancelled in the same loop turn in which the awaited thing finishes gets the result and
loses the cancellation (CPython gh-86296). For ozfig that meant a stream whose client had just
gone kept sending heartbeats into the closed connection, and its generation was never
cancelled, holding a slot until the answer ended by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """The result of `awaitable`, or TimeoutError after `seconds`; a cancellation always propagates."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except BaseException:  # our own cancellation: the awaited work is cancelled with us
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise asyncio.TimeoutError(f"no result within {seconds:g} s")
    return task.result()
