"""A `llama_batch`: the tokens one `llama_decode` call processes, each with its position and sequence."""

from __future__ import annotations

import llama_cpp as lc

from .owner import Owner


class Batch(Owner):
    """Owns a `llama_batch` of up to `capacity` tokens (one sequence id each); `close` or `with` frees it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.raw: lc.llama_batch | None = lc.llama_batch_init(capacity, 0, 1)
        self.n_tokens = 0
        self.every_row_out = True  # every token so far asks for its logits (row = output row)

    def clear(self) -> None:
        self.n_tokens = 0
        self.every_row_out = True

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append a token; returns its row (where its logits are after the decode, when asked for)."""
        raw = self.raw
        assert raw is not None, "the batch is closed"
        n = self.n_tokens
        if n >= self.capacity:
            raise ValueError(f"the batch holds at most {self.capacity} tokens")
        raw.token[n] = token
        raw.pos[n] = pos  # type: ignore[call-overload]
        raw.n_seq_id[n] = 1
        raw.seq_id[n][0] = seq
        raw.logits[n] = logits
        if not logits:
            self.every_row_out = False
        self.n_tokens = n + 1
        return n

    def close(self) -> None:
        if self.raw is not None:
            lc.llama_batch_free(self.raw)
            self.raw = None

