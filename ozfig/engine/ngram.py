"""Prompt-lookup proposals: what a sequence's own tokens say comes next.

An answer that quotes its sources repeats runs of its prompt. `NgramIndex` holds every n-gram of
one sequence's tokens (prompt and answer so far) with where it last occurred; `propose` finds the
longest of the sequence's final n-grams that occurred before and offers the tokens that followed
that occurrence. The target model checks the offer in its next decode (`speculation.py`); no
model is involved here. Indexing is a few dict writes per token and a prompt is indexed in C
(`dict.update` over zipped slices): about 0.3 µs per prompt token and n-gram size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFAULT_SIZES = (4, 3, 2)  # n-gram lengths tried, longest first


class NgramIndex:
    """The tokens of one sequence and, per n-gram size, where each n-gram last ended."""

    def __init__(self, tokens: Sequence[int] = (), sizes: Sequence[int] = DEFAULT_SIZES) -> None:
        if not sizes or min(sizes) < 1:
            raise ValueError(f"n-gram sizes must be at least 1, got {tuple(sizes)}")
        self.sizes = tuple(sorted(set(sizes), reverse=True))
        self.tokens: list[int] = []
        # per size n: n-gram -> index of the token that followed its latest earlier occurrence
        self.follows: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in self.sizes}
        self.extend(tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def extend(self, tokens: Iterable[int]) -> None:
        new = list(tokens)
        if not new:
            return
        start = len(self.tokens)
        self.tokens.extend(new)
        toks = self.tokens
        end = len(toks)
        for n, follows in self.follows.items():
            # n-grams ending just before index i, for each new i (i - n >= 0), map to i
            first = max(start, n)
            if first >= end:
                continue
            grams = zip(*(toks[first - n + j : end - n + j] for j in range(n)), strict=False)
            follows.update(zip(grams, range(first, end), strict=False))

    def append(self, token: int) -> None:
        toks = self.tokens
        i = len(toks)
        for n, follows in self.follows.items():
            if i >= n:
                follows[tuple(toks[i - n : i])] = i
        toks.append(token)

    def propose(self, limit: int) -> tuple[list[int], int]:
        """Up to `limit` tokens that followed the latest earlier occurrence of the sequence's
        longest matching final n-gram, and that n (0 and [] when none matches)."""
        toks = self.tokens
        end = len(toks)
        if limit <= 0:
            return [], 0
        for n in self.sizes:
            if end <= n:
                continue
            at = self.follows[n].get(tuple(toks[end - n :]))
            if at is not None:
                return toks[at : at + limit], n
        return [], 0
