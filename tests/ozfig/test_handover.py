"""The engine's handover of step events to an asyncio loop: everything posted from another thread
arrives on the loop, in order, once; posts made before the loop drains share one wake; a closed
loop drops posts; the pipe is closed with the loop; a loop that cannot watch a pipe still gets
everything (call_soon_threadsafe)."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import Any

import pytest

from ozfig.engine import handover as handover_module
from ozfig.engine.handover import Handover


def post_from_thread(handover: Handover[int], items: range) -> None:
    thread = threading.Thread(target=lambda: [handover.post(i) for i in items])
    thread.start()
    thread.join()


async def wait_for(received: list[int], n: int) -> None:
    for _ in range(500):
        if len(received) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(received)} of {n} items arrived")


def test_items_from_another_thread_arrive_in_order_once() -> None:
    received: list[int] = []
    threads: set[int] = set()

    def deliver(item: int) -> None:
        received.append(item)
        threads.add(threading.get_ident())

    async def main() -> None:
        handover: Handover[int] = Handover(asyncio.get_running_loop(), deliver)
        assert handover.uses_pipe
        post_from_thread(handover, range(1000))
        await wait_for(received, 1000)
        post_from_thread(handover, range(1000, 1010))  # and again after a drain
        await wait_for(received, 1010)
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert received == list(range(1010))
    assert threads == {threading.get_ident()}  # delivered on the loop's thread (asyncio.run's)


def test_posts_before_a_drain_share_one_wake(monkeypatch: Any) -> None:
    real_write = handover_module._write
    assert real_write is not None
    writes: list[int] = []

    def counted_write(fd: int, data: bytes, n: int) -> int:
        writes.append(fd)
        return real_write(fd, data, n)

    monkeypatch.setattr(handover_module, "_write", counted_write)
    received: list[int] = []

    async def main() -> None:
        handover: Handover[int] = Handover(asyncio.get_running_loop(), received.append)
        post_from_thread(handover, range(50))  # the loop is busy here: nothing drains meanwhile
        await wait_for(received, 50)
        post_from_thread(handover, range(50, 60))
        await wait_for(received, 60)

    asyncio.run(main())
    assert received == list(range(60))
    assert len(writes) == 2  # one wake per drain


def test_a_closed_loop_drops_posts_and_its_pipe_closes_with_it() -> None:
    received: list[int] = []
    loop = asyncio.new_event_loop()
    handover: Handover[int] = Handover(loop, received.append)
    read_fd, write_fd = handover._read_fd, handover._write_fd
    loop.close()
    handover.post(1)  # no error, nothing queued
    assert received == [] and not handover._items
    os.fstat(write_fd)  # still open while the loop object lives
    del loop
    gc.collect()
    for fd in (read_fd, write_fd):
        with pytest.raises(OSError):
            os.fstat(fd)
    handover.post(2)  # the loop is gone: still no error, and no write to a closed descriptor
    assert received == []


def test_without_a_pipe_it_hands_over_with_call_soon_threadsafe(monkeypatch: Any) -> None:
    received: list[int] = []

    def no_readers(self: Any, fd: int, callback: Any, *args: Any) -> None:
        raise NotImplementedError

    async def main() -> None:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(type(loop), "add_reader", no_readers)
        handover: Handover[int] = Handover(loop, received.append)
        assert not handover.uses_pipe
        post_from_thread(handover, range(100))
        await wait_for(received, 100)

    asyncio.run(main())
    assert received == list(range(100))


def test_without_libc_write_it_hands_over_with_call_soon_threadsafe(monkeypatch: Any) -> None:
    monkeypatch.setattr(handover_module, "_write", None)
    received: list[int] = []

    async def main() -> None:
        handover: Handover[int] = Handover(asyncio.get_running_loop(), received.append)
        assert not handover.uses_pipe
        post_from_thread(handover, range(100))
        await wait_for(received, 100)

    asyncio.run(main())
    assert received == list(range(100))
