"""A bounded LRU whose entries expire: by count, by total size in bytes, and each after its own TTL."""

from __future__ import annotations

import collections
import sys
import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """`max_entries` entries and `max_bytes` at most; 0 entries disables it.

    An entry's bytes are `size(value)`; for texts, `memory_bytes`: the memory a text holds
    (1, 2 or 4 bytes a character, by its widest one, and the object's header), so a page of
    Chinese text counts what it takes, not its length."""

    def __init__(
        self,
        max_entries: int,
        *,
        max_bytes: int = 0,
        size: Callable[[V], int] = lambda _: 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = size
        self.clock = clock
        self.bytes = 0
        self._items: collections.OrderedDict[str, tuple[float, int, V]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, _, value = item
        if self.clock() >= expires:
            self._remove(key)
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V, ttl: float) -> None:
        if self.max_entries <= 0 or ttl <= 0:
            return
        nbytes = self.size(value)
        if self.max_bytes and nbytes > self.max_bytes:
            return
        if key in self._items:
            self._remove(key)
        self._items[key] = (self.clock() + ttl, nbytes, value)
        self.bytes += nbytes
        while len(self._items) > self.max_entries or (self.max_bytes and self.bytes > self.max_bytes):
            self._remove(next(iter(self._items)))

    def _remove(self, key: str) -> None:
        _, nbytes, _ = self._items.pop(key)
        self.bytes -= nbytes


def memory_bytes(text: str) -> int:
    """The memory `text` holds, in bytes."""
    return sys.getsizeof(text)


def normalized_query(query: str) -> str:
    return " ".join(query.split()).casefold()
