"""A llama.cpp context: decoding batches, reading logits, and the KV memory of its sequences.

`Context` owns the `llama_context` pointer (freed by `close` or `with`). Memory operations are
named for what they do to one sequence's cells: remove a range, copy a range to another
sequence, save and load a sequence's whole state as bytes (llama.cpp's per-sequence state API).
"""

from __future__ import annotations

import ctypes

import llama_cpp as lc
import numpy as np

from .batch import Batch
from .owner import Owner


class Context(Owner):
    """A context of `n_ctx` cells in all, for `n_seq` sequences."""

    def __init__(self, ptr: ctypes.c_void_p, *, n_ctx: int, n_seq: int, n_vocab: int) -> None:
        self.ptr: ctypes.c_void_p | None = ptr
        self.n_ctx = n_ctx
        self.n_seq = n_seq
        self.n_vocab = n_vocab
        self._memory = lc.llama_get_memory(ptr)
        self._direct_rows = 0  # rows of the last decode that are output rows too (0: none)
        self._rows: np.ndarray | None = None  # the last decode's logits (`logits`), set at its first read
        # a view of llama.cpp's logits buffer and the buffer's address (it moves only when a
        # decode needs more rows than it holds)
        self._buffer: np.ndarray | None = None
        self._buffer_at = 0

    def close(self) -> None:
        if self.ptr:
            lc.llama_free(self.ptr)
            self.ptr = None


    # --- decoding ---------------------------------------------------------------------------

    def decode(self, batch: Batch) -> int:
        """Process `batch`'s tokens; llama.cpp's return code (0: done)."""
        raw = batch.raw
        assert raw is not None, "the batch is closed"
        raw.n_tokens = batch.n_tokens
        self._rows = None
        self._direct_rows = batch.n_tokens if batch.every_row_out else 0
        return int(lc.llama_decode(self.ptr, raw))

    def logits(self, row: int) -> np.ndarray:
        """The float32 logits of a batch row decoded with logits on (a view, valid until the next decode).

        When every row of the batch asked for logits, a row is its output row: it is read from one
        view of the whole buffer, made once per buffer address (a step of many sequences reads many
        rows; building a numpy view per row costs more than the argmax over it)."""
        if row < self._direct_rows:
            return self._direct()[row]
        ptr = lc.llama_get_logits_ith(self.ptr, row)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def argmax_rows(self, n_rows: int) -> list[int] | None:
        """The first of the largest logits of each of the first `n_rows` rows, in one pass; None unless
        every one of those rows is its output row (every row of the batch asked for logits)."""
        if n_rows > self._direct_rows:
            return None
        picks: list[int] = self._direct()[:n_rows].argmax(axis=1).tolist()
        return picks

    def _direct(self) -> np.ndarray:
        """The last decode's output rows (when every row asked for logits), read once per decode."""
        rows = self._rows
        if rows is None:
            rows = self._rows = self._logits_buffer()
        return rows

    def _logits_buffer(self) -> np.ndarray:
        """The last decode's logits, its first `_direct_rows` rows at least: the kept view of llama.cpp's
        buffer while the buffer stays where it was and is read no further than the view reaches."""
        address = ctypes.cast(lc.llama_get_logits(self.ptr), ctypes.c_void_p).value
        assert address, "llama.cpp kept no logits"
        if self._buffer is None or address != self._buffer_at or len(self._buffer) < self._direct_rows:
            self._buffer, self._buffer_at = self.logits_rows(self._direct_rows), address
        return self._buffer

    def logits_rows(self, n_rows: int) -> np.ndarray:
        """The logits of the last decode's first `n_rows` output rows, in batch order (a view)."""
        return np.ctypeslib.as_array(lc.llama_get_logits(self.ptr), shape=(n_rows, self.n_vocab))

    # --- memory: the KV cells of each sequence -------------------------------------------------

    def clear(self) -> None:
        """Every sequence's cells."""
        lc.llama_memory_clear(self._memory, True)

    def seq_remove(self, seq: int, start: int = 0, end: int = -1) -> bool:
        """Remove positions [start, end) of `seq` (end -1: to the end); False if llama.cpp cannot cut there."""
        return bool(lc.llama_memory_seq_rm(self._memory, seq, start, end))

    def seq_copy(self, src: int, dst: int, start: int = 0, end: int = -1) -> None:
        """Make `dst` hold `src`'s cells of positions [start, end) too."""
        lc.llama_memory_seq_cp(self._memory, src, dst, start, end)

    def seq_pos_min(self, seq: int) -> int:
        """The first position `seq` holds, -1 when it holds none."""
        return int(lc.llama_memory_seq_pos_min(self._memory, seq))

    def seq_pos_max(self, seq: int) -> int:
        """The last position `seq` holds, -1 when it holds none."""
        return int(lc.llama_memory_seq_pos_max(self._memory, seq))

    def seq_state_size(self, seq: int) -> int:
        return int(lc.llama_state_seq_get_size(self.ptr, seq))

    def seq_state_save(self, seq: int) -> bytearray:
        """`seq`'s whole state (its cells' keys and values, positions), written straight into a new buffer."""
        size = self.seq_state_size(seq)
        buf = bytearray(size)
        view = (ctypes.c_uint8 * size).from_buffer(buf)
        written = int(lc.llama_state_seq_get_data(self.ptr, view, size, seq))
        del view
        if written != size:
            del buf[written:]
        return buf

    def seq_state_load(self, seq: int, data: bytes | bytearray) -> bool:
        """Replace `seq`'s cells with a state from `seq_state_save`; False if llama.cpp refused it."""
        if isinstance(data, bytearray):
            buf = (ctypes.c_uint8 * len(data)).from_buffer(data)  # no copy
        else:
            buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        return int(lc.llama_state_seq_set_data(self.ptr, buf, len(data), seq)) > 0
