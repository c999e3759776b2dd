"""The host-memory prompt cache (`--cache-ram`): KV states of sequences, kept by their tokens.

Before a sequence's cells are overwritten, the runner saves its state here (llama.cpp's
per-sequence state, as bytes) keyed by the tokens it holds; a new prompt restores the entry
sharing the longest prefix with it when that saves enough work. Entries are evicted least
recently used first, so the bytes held never exceed the budget. No llama.cpp calls here.
"""

from __future__ import annotations

import array
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .prefix_cache import common_prefix


@dataclass
class CacheEntry:
    tokens: array.array[int]  # what the saved cells hold, in order
    exact: int  # how many of them were computed in whole aligned prompt chunks (`exact` mode)
    state: bytes | bytearray  # llama.cpp's per-sequence state
    last_used: float = field(default_factory=time.monotonic)
    id: int = 0

    @property
    def size(self) -> int:
        """Bytes it holds (the state and the tokens, the bulk of it)."""
        return len(self.state) + 4 * len(self.tokens)


class RamCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.entries: dict[int, CacheEntry] = {}
        self.bytes_held = 0
        self._ids = itertools.count(1)

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def fits(self, state_size: int, n_tokens: int) -> bool:
        return 0 < state_size + 4 * n_tokens <= self.budget

    def holds(self, tokens: Sequence[int]) -> bool:
        """Whether an entry already holds these tokens or more of the same prefix."""
        return any(
            len(e.tokens) >= len(tokens) and common_prefix(e.tokens, tokens) == len(tokens)
            for e in self.entries.values()
        )

    def put(self, tokens: Sequence[int], exact: int, state: bytes | bytearray) -> bool:
        """Keep a state; entries it makes redundant (a prefix of its tokens) go. False if over the budget."""
        entry = CacheEntry(array.array("i", tokens), exact, state, id=next(self._ids))
        if entry.size > self.budget:
            return False
        for old in list(self.entries.values()):
            if len(old.tokens) <= len(entry.tokens) and common_prefix(old.tokens, entry.tokens) == len(old.tokens):
                self._drop(old)
        while self.bytes_held + entry.size > self.budget:
            self._drop(min(self.entries.values(), key=lambda e: e.last_used))
        self.entries[entry.id] = entry
        self.bytes_held += entry.size
        return True

    def best(self, prompt: Sequence[int], better_than: int) -> tuple[CacheEntry, int] | None:
        """The entry sharing the longest prefix with `prompt`, if longer than `better_than`."""
        found: tuple[CacheEntry, int] | None = None
        for entry in self.entries.values():
            shared = common_prefix(entry.tokens, prompt)
            if shared > (found[1] if found else better_than):
                found = (entry, shared)
        if found:
            found[0].last_used = time.monotonic()
        return found

    def discard(self, entry: CacheEntry) -> None:
        """Drop an entry llama.cpp refused to load."""
        if entry.id in self.entries:
            self._drop(entry)

    def _drop(self, entry: CacheEntry) -> None:
        del self.entries[entry.id]
        self.bytes_held -= entry.size
