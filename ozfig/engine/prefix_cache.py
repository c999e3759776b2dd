"""Which tokens each KV sequence holds, and how much of a new prompt they save.

Bookkeeping only (no llama.cpp calls): the runner tells it what it fed to each sequence, and
asks which sequence a new prompt should go to and how many of its leading tokens need not be
computed again. Three modes (`--prompt-cache`):
- `on`: any common prefix is reused, generated tokens included (as llama-server does): an
  answer may then differ in the last bits from a fresh run, because the reused cells were
  computed in other batch shapes;
- `exact`: only tokens computed in whole prompt chunks aligned on multiples of `chunk`: the
  reused cells are then exactly what a fresh run computes, so answers never depend on what ran before;
- `off`: nothing is reused.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ReuseMode = Literal["on", "exact", "off"]
_BLOCK = 64


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two token sequences (slices compared a block at a time)."""
    n = min(len(a), len(b))
    i = 0
    while i < n:
        j = min(i + _BLOCK, n)
        if list(a[i:j]) == list(b[i:j]):
            i = j
            continue
        while a[i] == b[i]:
            i += 1
        return i
    return n


def usable(shared: int, exact: int, prompt_len: int, mode: ReuseMode, chunk: int) -> int:
    """How much of a shared prefix may be reused: short of the whole prompt (its last token must be
    decoded to get the first answer token's logits), and in `exact` mode only whole aligned chunks."""
    if mode == "off":
        return 0
    shared = min(shared, prompt_len - 1)
    if mode == "exact":
        shared = min(shared, exact)
        shared -= shared % chunk
    return max(shared, 0)


@dataclass(frozen=True)
class Placement:
    """Where a new prompt goes: sequence `seq`, reusing `keep` tokens — its own cells, or a copy
    of sequence `source`'s (busy: it cannot be taken over)."""

    seq: int
    keep: int
    source: int | None = None


class PrefixCache:
    """What the KV cells of each of `n_seq` sequences hold, and what of that may be reused."""

    def __init__(self, n_seq: int, chunk: int, mode: ReuseMode = "on") -> None:
        self.mode: ReuseMode = mode
        self.chunk = chunk
        # what each sequence's KV cells hold (prompt and generated tokens), kept after an answer ends
        self.tokens: list[list[int]] = [[] for _ in range(n_seq)]
        # how many of those were computed in whole, aligned prompt chunks (what `exact` reuses)
        self.exact: list[int] = [0] * n_seq
        self.last_used: list[float] = [0.0] * n_seq

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def reusable(self, seq: int, prompt: Sequence[int]) -> int:
        """Leading tokens of `prompt` whose KV `seq` holds and that may be reused."""
        if not self.enabled:
            return 0
        return usable(common_prefix(self.tokens[seq], prompt), self.exact[seq], len(prompt), self.mode, self.chunk)

    def place(self, free: Sequence[int], busy: Sequence[int], prompt: Sequence[int], min_copy: int) -> Placement:
        """The free sequence for `prompt`: the one holding the longest reusable prefix, else the least
        recently used; when a busy sequence holds a longer one (by `min_copy` tokens at least), a copy of it."""
        if not self.enabled:
            return Placement(free[0], 0)
        seq = max(free, key=lambda s: (self.reusable(s, prompt), -self.last_used[s]))
        keep = self.reusable(seq, prompt)
        if busy:
            source = max(busy, key=lambda s: self.reusable(s, prompt))
            shared = self.reusable(source, prompt)
            if shared >= keep + min_copy:
                # into the free sequence this prompt needs least (its cells go to the RAM cache first)
                target = min(free, key=lambda s: (self.reusable(s, prompt), self.last_used[s]))
                return Placement(target, shared, source)
        return Placement(seq, keep)

    def start(self, seq: int, prompt: Sequence[int], keep: int, exact: int | None = None) -> None:
        """`seq` now holds the first `keep` tokens of `prompt` (0: the sequence was cleared)."""
        self.tokens[seq] = list(prompt[:keep])
        self.exact[seq] = min(keep, exact if exact is not None else keep)
        self.last_used[seq] = time.monotonic()

    def fed_prompt(self, seq: int, start: int, tokens: Sequence[int]) -> None:
        """Prompt tokens `start`..`start + len(tokens)` were decoded into `seq`, as one chunk."""
        self.tokens[seq].extend(tokens)
        if len(tokens) == self.chunk and self.exact[seq] == start:
            self.exact[seq] = start + len(tokens)

    def fed_token(self, seq: int, token: int) -> None:
        """A generated token was decoded into `seq` (reused by `on`, never by `exact`)."""
        self.tokens[seq].append(token)

    def release(self, seq: int, keep: bool) -> None:
        """The answer in `seq` ended; `keep=False` when its KV cells were removed."""
        if not keep or not self.enabled:
            self.tokens[seq] = []
            self.exact[seq] = 0
        self.last_used[seq] = time.monotonic()
