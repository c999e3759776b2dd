"""Which prompt prefixes each KV sequence holds, so that a new prompt can reuse them.

Bookkeeping only (no llama.cpp calls): the scheduler tells it what it fed to each sequence,
and asks it which free sequence to give a new prompt and how many leading tokens of that
prompt need not be computed again. Only tokens computed in whole prompt chunks, aligned on
multiples of `chunk`, are reused: a reused prefix then holds exactly the KV a fresh run of
the same prompt would compute, so answers do not depend on what ran before.
"""

from __future__ import annotations

import time
from collections.abc import Sequence


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class PrefixCache:
    """What the KV cells of each of `n_seq` sequences hold, and what of that may be reused."""

    def __init__(self, n_seq: int, chunk: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.chunk = chunk
        # what each sequence's KV cells hold, kept after an answer ends for prompt-prefix reuse
        self.tokens: list[list[int]] = [[] for _ in range(n_seq)]
        # how many of those were computed in whole, aligned prompt chunks: only these are reused
        self.exact: list[int] = [0] * n_seq
        self.last_used: list[float] = [0.0] * n_seq

    def pick(self, free: Sequence[int], prompt: Sequence[int]) -> int:
        """Of the `free` sequences, the one holding the longest reusable prefix, else the least recently used."""
        if not self.enabled:
            return free[0]
        return max(free, key=lambda s: (self.reusable(s, prompt), -self.last_used[s]))

    def reusable(self, seq: int, prompt: Sequence[int]) -> int:
        """Leading tokens of `prompt` whose KV `seq` holds exactly as a fresh run would compute it.

        Always a multiple of `chunk`, and short of the whole prompt (its last token must be decoded
        to get the logits of the first answer token).
        """
        if not self.enabled:
            return 0
        shared = min(common_prefix(self.tokens[seq], prompt), self.exact[seq], len(prompt) - 1)
        return max(shared - shared % self.chunk, 0)

    def start(self, seq: int, prompt: Sequence[int], keep: int) -> None:
        """`seq` now holds the first `keep` tokens of `prompt` (0: the sequence was cleared)."""
        self.tokens[seq] = list(prompt[:keep])
        self.exact[seq] = keep

    def fed_prompt(self, seq: int, start: int, tokens: Sequence[int]) -> None:
        """Prompt tokens `start`..`start + len(tokens)` were decoded into `seq`, as one chunk."""
        self.tokens[seq].extend(tokens)
        if len(tokens) == self.chunk and self.exact[seq] == start:
            self.exact[seq] = start + len(tokens)

    def fed_token(self, seq: int, token: int) -> None:
        """A generated token was decoded into `seq` (its KV is held, never reused exactly)."""
        self.tokens[seq].append(token)

    def release(self, seq: int, keep: bool) -> None:
        """The answer in `seq` ended; `keep=False` when its KV cells were removed."""
        if not keep or not self.enabled:
            self.tokens[seq] = []
            self.exact[seq] = 0
        self.last_used[seq] = time.monotonic()
