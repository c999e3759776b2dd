"""How the engine thread hands a step's events to an asyncio loop without waiting for that loop.

`loop.call_soon_threadsafe` wakes a loop with a socket write that releases the GIL: the woken loop
takes the GIL, and the engine thread, back from the write, waits for the loop's whole turn before
it can start the next decode (0.1-0.2 ms a step on a 2-core CPU, measured in issue 18). A `Handover`
queues the items and wakes its loop through a pipe the loop watches (`add_reader`), written with
libc's `write` called through `ctypes.PyDLL`, which keeps the GIL: the loop runs when the engine
thread next lets the GIL go, in `llama_decode`, while llama.cpp computes. Items posted before the
loop has drained the last ones ride on the same wake.

Where the loop cannot watch a pipe (Windows' proactor loop) or libc's `write` cannot be had, a
`Handover` falls back to `call_soon_threadsafe`, with the same one wake per drain.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_WAKE = b"\0"


def _gil_keeping_write() -> Callable[[int, bytes, int], int] | None:
    """libc's write(2) as a ctypes function that keeps the GIL while it runs (None where there is none)."""
    try:
        write = ctypes.PyDLL(None).write
    except (OSError, AttributeError, TypeError):
        return None
    write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    write.restype = ctypes.c_ssize_t
    return write  # type: ignore[no-any-return]


_write = _gil_keeping_write()


def _close_pipe(read_fd: int, write_fd: int) -> None:
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


class Handover(Generic[T]):
    """Items posted from any thread, handed in order to `deliver` on `loop`'s thread.

    Make it on the loop's thread. The pipe is closed when the loop is garbage-collected; until
    then posting to a closed loop drops the items (nobody is left to read them).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[T], None]) -> None:
        try:
            self._loop: Callable[[], asyncio.AbstractEventLoop | None] = weakref.ref(loop)
        except TypeError:  # a loop type without weak references: held, and handed over the old way
            self._loop = lambda: loop
        self._deliver = deliver
        self._items: collections.deque[T] = collections.deque()
        self._pending = False  # a wake is on its way and the loop has not yet started draining
        self._read_fd = self._write_fd = -1
        if _write is None or not isinstance(self._loop, weakref.ref):
            return
        read_fd, write_fd = os.pipe()
        try:
            os.set_blocking(read_fd, False)
            os.set_blocking(write_fd, False)  # never block the engine: a full pipe already wakes the loop
            loop.add_reader(read_fd, self._drain)
        except (NotImplementedError, OSError) as exc:
            log.debug("the loop cannot watch a pipe (%s); handing over with call_soon_threadsafe", exc)
            _close_pipe(read_fd, write_fd)
            return
        self._read_fd, self._write_fd = read_fd, write_fd
        weakref.finalize(loop, _close_pipe, read_fd, write_fd)

    @property
    def uses_pipe(self) -> bool:
        """Whether wakes go through the GIL-keeping pipe write (else `call_soon_threadsafe`)."""
        return self._write_fd >= 0

    def post(self, item: T) -> None:
        """Queue `item` for the loop and wake it unless a wake is already on its way (any thread)."""
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        self._items.append(item)
        if self._pending:
            return
        self._pending = True
        if self._write_fd >= 0 and _write is not None:
            # the loop is alive (checked above, with the GIL held since): its pipe is still open
            _write(self._write_fd, _WAKE, 1)  # -1 (EAGAIN) only when wakes are already waiting
        else:
            with contextlib.suppress(RuntimeError):  # closed since the check above
                loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        """On the loop: every queued item to `deliver`, oldest first."""
        self._pending = False  # before taking items: one posted from now on wakes the loop again
        if self._read_fd >= 0:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                os.read(self._read_fd, 4096)
        items = self._items
        while items:
            self._deliver(items.popleft())
