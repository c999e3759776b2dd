"""A `llama_batch`: the tokens one `llama_decode` call processes, each with its position and sequence.

The batch's arrays are ctypes arrays that `Batch` owns and llama.cpp reads through the struct's
pointers: a token goes in with plain array stores (a `llama_batch_init` batch is written through
ctypes pointer objects made anew at each access), and a step's rows or a prompt's chunk in one
slice store per array (`add_rows`, `add_span`).
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp as lc

from .owner import Owner

_Int32P = ctypes.POINTER(ctypes.c_int32)


class Batch(Owner):
    """Up to `capacity` tokens, one sequence id each; `close` or `with` ends it (its memory is its own)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a batch holds at least one token")
        self.capacity = capacity
        # (typed Any: ctypes' stubs take a list of ints for a slice only as list[c_int32 | int])
        self.tokens: ctypes.Array[Any] = (ctypes.c_int32 * capacity)()
        self.positions: ctypes.Array[Any] = (ctypes.c_int32 * capacity)()
        self.seqs: ctypes.Array[Any] = (ctypes.c_int32 * capacity)()  # row i's sequence: llama.cpp reads seq_id[i][0]
        self.outputs: ctypes.Array[Any] = (ctypes.c_int8 * capacity)()  # 1: the row's logits are kept
        self._n_seq_id = (ctypes.c_int32 * capacity)(*([1] * capacity))
        # seq_id is an array of per-row pointers; each points at that row's cell of `seqs`
        base, size = ctypes.addressof(self.seqs), ctypes.sizeof(ctypes.c_int32)
        self._seq_rows = (ctypes.c_void_p * capacity)(*range(base, base + capacity * size, size))
        raw = lc.llama_batch()
        raw.n_tokens = 0
        # (llama_cpp annotates the struct's pointer fields as arrays)
        raw.token = ctypes.cast(self.tokens, _Int32P)  # type: ignore[assignment]
        raw.pos = ctypes.cast(self.positions, _Int32P)  # type: ignore[assignment]
        raw.n_seq_id = ctypes.cast(self._n_seq_id, _Int32P)  # type: ignore[assignment]
        raw.seq_id = ctypes.cast(self._seq_rows, ctypes.POINTER(_Int32P))  # type: ignore[assignment]
        raw.logits = ctypes.cast(self.outputs, ctypes.POINTER(ctypes.c_int8))  # type: ignore[assignment]
        self.raw: lc.llama_batch | None = raw
        self.n_tokens = 0
        self.every_row_out = True  # every token so far asks for its logits (row = output row)

    def clear(self) -> None:
        self.n_tokens = 0
        self.every_row_out = True

    def _room(self, count: int) -> int:
        if self.raw is None:
            raise ValueError("the batch is closed")
        n = self.n_tokens
        if n + count > self.capacity:
            raise ValueError(f"the batch holds at most {self.capacity} tokens")
        return n

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append a token; returns its row (where its logits are after the decode, when asked for)."""
        n = self._room(1)
        self.tokens[n] = token
        self.positions[n] = pos
        self.seqs[n] = seq
        self.outputs[n] = logits
        if not logits:
            self.every_row_out = False
        self.n_tokens = n + 1
        return n

    def add_rows(self, tokens: list[int], positions: list[int], seqs: list[int]) -> int:
        """Append tokens that all ask for their logits, each with its own position and sequence; the
        first one's row."""
        n = self._room(len(tokens))
        end = n + len(tokens)
        self.tokens[n:end] = tokens
        self.positions[n:end] = positions
        self.seqs[n:end] = seqs
        self.outputs[n:end] = [1] * len(tokens)
        self.n_tokens = end
        return n

    def add_span(self, tokens: list[int], start: int, seq: int, last_out: bool) -> int:
        """Append consecutive tokens of one sequence from position `start`; only the last may ask for
        its logits (`last_out`). The last one's row."""
        if not tokens:
            raise ValueError("a span holds at least one token")
        n = self._room(len(tokens))
        end = n + len(tokens)
        self.tokens[n:end] = tokens
        self.positions[n:end] = list(range(start, start + len(tokens)))
        self.seqs[n:end] = [seq] * len(tokens)
        self.outputs[n:end] = [0] * len(tokens)
        if last_out:
            self.outputs[end - 1] = 1
        if not last_out or len(tokens) > 1:
            self.every_row_out = False
        self.n_tokens = end
        return end - 1

    def close(self) -> None:
        self.raw = None
