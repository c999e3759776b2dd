"""Prompt-lookup proposals: what a sequence's own tokens say comes next.

An answer that quotes its sources repeats runs of its prompt. `NgramIndex` holds one sequence's
tokens (prompt and answer so far) and, per n-gram size, where each n-gram last occurred;
`propose` finds the longest of the sequence's final n-grams that occurred before and offers the
tokens that followed that occurrence. The target model checks the offer in its next decode
(`speculation.py`); no model is involved here. `AnswerMemory` holds the ends of recent sequences
of all requests, for a question asked again (where the sequence's own tokens have nothing yet).

Adding a token is a list append; the index catches up when a proposal is asked for, in bulk
(`dict.update` over zipped slices, in C: about 0.1 µs per token and n-gram size), so a sequence
that is not speculating costs nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFAULT_SIZES = (4, 3, 2)  # n-gram lengths tried, longest first
MATCH_CAP = 64  # how far back a match's length is counted


class NgramIndex:
    """The tokens of one sequence and, per n-gram size, where each n-gram last ended."""

    def __init__(self, tokens: Iterable[int] = (), sizes: Sequence[int] = DEFAULT_SIZES) -> None:
        if not sizes or min(sizes) < 1:
            raise ValueError(f"n-gram sizes must be at least 1, got {tuple(sizes)}")
        self.sizes = tuple(sorted(set(sizes), reverse=True))
        self.tokens: list[int] = list(tokens)
        self.indexed = 0  # tokens[:indexed] are in `follows`
        # per size n: n-gram -> index of the token that followed its latest earlier occurrence
        self.follows: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in self.sizes}

    def __len__(self) -> int:
        return len(self.tokens)

    def append(self, token: int) -> None:
        self.tokens.append(token)

    def extend(self, tokens: Iterable[int]) -> None:
        self.tokens.extend(tokens)

    def _catch_up(self) -> None:
        """Index every n-gram that has a known next token: those ending before the last token."""
        toks = self.tokens
        start, end = self.indexed, len(toks)
        if start >= end:
            return
        for n, follows in self.follows.items():
            # the n-gram ending just before index i maps to i, for each new i with i - n >= 0
            first = max(start, n)
            if first < end:
                grams = zip(*(toks[first - n + j : end - n + j] for j in range(n)), strict=False)
                follows.update(zip(grams, range(first, end), strict=False))
        self.indexed = end

    def propose(self, limit: int) -> tuple[list[int], int]:
        """Up to `limit` tokens that followed the latest earlier occurrence of the sequence's
        longest matching final n-gram, and how long the match is: the n-gram extended backwards
        while the tokens before both agree, up to `MATCH_CAP` ([] and 0 when nothing matches)."""
        return self.continuation(self.tokens, limit)

    def continuation(self, key: Sequence[int], limit: int) -> tuple[list[int], int]:
        """As `propose`, for the final n-grams of `key` (another sequence's tokens) looked up here."""
        if limit <= 0:
            return [], 0
        self._catch_up()
        toks = self.tokens
        end = len(key)
        for n in self.sizes:
            if end <= n:
                continue
            at = self.follows[n].get(tuple(key[end - n :]))
            if at is not None:
                length = n
                while (
                    length < MATCH_CAP
                    and length < at
                    and length < end
                    and toks[at - 1 - length] == key[end - 1 - length]
                ):
                    length += 1
                return toks[at : at + limit], length
        return [], 0


class AnswerMemory:
    """The ends of recent sequences (the last `CONTEXT` prompt tokens and the answer), for a
    question asked again: its answer's n-grams are looked up here when its own tokens offer no
    long match. Only matches of at least `MIN_MATCH` tokens count (an n-gram common to many
    answers says little), so that is the one n-gram size indexed: the latest occurrence of the
    key's last `MIN_MATCH` tokens, however far the match goes back. The memory starts over when
    it holds `CAPACITY` tokens."""

    CONTEXT = 32
    MIN_MATCH = 8
    CAPACITY = 1 << 16
    _GAP = -1  # between two sequences: no token id, so no n-gram spans two of them

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.index = NgramIndex(sizes=(self.MIN_MATCH,))

    def __len__(self) -> int:
        return len(self.index)

    def remember(self, tokens: Sequence[int], prompt_length: int) -> None:
        """Keep an ended sequence: its prompt's last `CONTEXT` tokens and its answer (one of at
        least two tokens; shorter ones teach nothing)."""
        if len(tokens) - prompt_length < 2:
            return
        end = list(tokens[max(prompt_length - self.CONTEXT, 0) :])
        if len(self.index) + len(end) + 1 > self.capacity:
            self.index = NgramIndex(sizes=(self.MIN_MATCH,))
        self.index.extend([self._GAP, *end])

    def continuation(self, key: Sequence[int], limit: int) -> tuple[list[int], int]:
        """What followed `key`'s end in a remembered sequence, and the match's length ([] and 0
        below `MIN_MATCH`); never past the remembered sequence's end."""
        tokens, length = self.index.continuation(key, limit)
        if self._GAP in tokens:
            tokens = tokens[: tokens.index(self._GAP)]
        return tokens, length
