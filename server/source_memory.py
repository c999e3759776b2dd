"""The web sources ozfig put into users' messages, remembered so later turns show them again.

A chat client sends the whole conversation back each turn, with its own text of the earlier
user messages. With web search on, ozfig put numbered sources into each of those when it was
the last one; rendering the history without them would change the prompt inside the first
user turn (so no KV cache is reused) and leave the earlier answers' [1], [2] pointing at
nothing. So the sources of each augmented message are kept, keyed by the conversation up to
and including that message (roles and texts as the client sends them), and put back when the
same history comes again. Bounded: least recently used entries go past `max_entries` or
`max_bytes` (the sources' text); a forgotten message is rendered as the client sent it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
from collections.abc import Sequence

from .search import Source


def history_key(messages: Sequence[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps([[m["role"], m["content"]] for m in messages]).encode()).hexdigest()


class SourceMemory:
    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[str, tuple[list[Source], int]] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # prompts are built in worker threads

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, history: Sequence[dict[str, str]], sources: Sequence[Source]) -> None:
        """`history` ends with the user message that got `sources` (an empty list counts too)."""
        key = history_key(history)
        size = sum(len(s.title.encode()) + len(s.url.encode()) + len(s.text.encode()) for s in sources) + 64
        with self._lock:
            if key in self._entries:
                self._bytes -= self._entries.pop(key)[1]
            self._entries[key] = (list(sources), size)
            self._bytes += size
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def recall(self, history: Sequence[dict[str, str]]) -> list[Source] | None:
        """The sources given with the last message of `history`, or None if not remembered."""
        key = history_key(history)
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return list(found[0])
