"""`within`: a timeout that never loses a cancellation (asyncio.wait_for does on Python < 3.12)."""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ozfig.aio import within


def cancel_as_it_finishes(bounded: Callable[[Awaitable[Any], float], Awaitable[Any]]) -> str:
    """Cancel a task in the very loop turn in which what it awaits (with a timeout) finishes."""

    async def scenario() -> str:
        inner: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def waiter() -> str:
            await bounded(inner, 5)
            return "went on"

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)  # the task now waits on `inner`
        inner.set_result(1)
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return "cancelled"

    return asyncio.run(scenario())


def test_a_cancellation_as_the_work_finishes_is_kept() -> None:
    assert cancel_as_it_finishes(within) == "cancelled"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for was rewritten in 3.12")
def test_wait_for_loses_it_on_this_python() -> None:  # why `within` exists
    assert cancel_as_it_finishes(asyncio.wait_for) == "went on"


def test_results_timeouts_and_errors() -> None:
    async def value() -> int:
        return 7

    async def slow() -> None:
        await asyncio.sleep(10)

    async def broken() -> None:
        raise ValueError("no")

    assert asyncio.run(within(value(), 1)) == 7
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(within(slow(), 0.05))
    with pytest.raises(ValueError):
        asyncio.run(within(broken(), 1))
