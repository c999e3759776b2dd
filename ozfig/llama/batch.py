"""Filling a `llama_batch` and reading the logits a decode left, shared by every decoding loop."""

from __future__ import annotations

import ctypes

import llama_cpp as lc
import numpy as np


def put_token(batch: lc.llama_batch, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
    """Write entry `n` of `batch` (one sequence id); returns n + 1."""
    batch.token[n] = token
    batch.pos[n] = pos  # type: ignore[call-overload]
    batch.n_seq_id[n] = 1
    batch.seq_id[n][0] = seq
    batch.logits[n] = logits
    return n + 1


def logits_rows(ctx: ctypes.c_void_p | None, n_rows: int, n_vocab: int) -> np.ndarray:
    """The float32 logits of the last decode's output rows, in batch order (a view, valid until the next)."""
    return np.ctypeslib.as_array(lc.llama_get_logits(ctx), shape=(n_rows, n_vocab))
