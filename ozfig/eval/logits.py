"""Logits of chunks from llama.cpp (low-level API), and log-softmax over them in float64.

`LlamaChunkLogits.logits(chunks)` decodes up to `plan.n_seq` chunks — one sequence id each,
`plan.n_batch` tokens per `llama_decode` — and returns, per chunk, the float32 logits of
positions plan.first .. ctx-1 (what llama-perplexity asks llama.cpp for).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ozfig.llama.batch import Batch
from ozfig.llama.context import Context
from ozfig.llama.model import ContextParams, LlamaModel

from .chunks import ChunkPlan
from .errors import EvalError

log = logging.getLogger(__name__)

ROW_BLOCK = 64  # rows converted to float64 at once (bounds memory with a 128k vocabulary)


class LogitsSource(Protocol):
    n_vocab: int

    def logits(self, chunks: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Per chunk, the logits of positions first .. ctx-1; valid until the next call."""
        ...


class LlamaChunkLogits:
    """A llama.cpp context sized for `plan.n_seq` chunks of `plan.ctx` tokens."""

    def __init__(self, model: LlamaModel, plan: ChunkPlan, threads: int = 0) -> None:
        self.model = model
        self.plan = plan
        self.n_vocab = model.n_vocab
        self.ctx: Context = model.new_context(
            ContextParams(
                n_ctx=plan.n_seq * plan.ctx, n_batch=plan.n_batch, n_seq=plan.n_seq, threads=threads
            )
        )
        self.batch = Batch(plan.n_batch)

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    def __enter__(self) -> LlamaChunkLogits:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> int:
        """Decode (token, pos, seq, wants_logits) entries; the number of output rows."""
        batch = self.batch
        batch.clear()
        for token, pos, seq, out in entries:
            batch.add(token, pos, seq, out)
        code = self.ctx.decode(batch)
        if code != 0:
            raise EvalError(f"llama_decode failed (code {code}) on a batch of {len(entries)} tokens")
        return sum(1 for e in entries if e[3])

    def _outputs(self, n_rows: int) -> np.ndarray:
        return self.ctx.logits_rows(n_rows)

    def logits(self, chunks: Sequence[Sequence[int]]) -> list[np.ndarray]:
        plan = self.plan
        if not 1 <= len(chunks) <= plan.n_seq or any(len(c) != plan.ctx for c in chunks):
            raise ValueError(f"expected 1 to {plan.n_seq} chunks of {plan.ctx} tokens")
        self.ctx.clear()
        first, n_rows = plan.first, plan.ctx - plan.first
        if plan.decodes_per_chunk == 1:
            # all chunks in one batch; their output rows follow each other in batch order
            entries = [
                (chunk[pos], pos, seq, pos >= first)
                for seq, chunk in enumerate(chunks)
                for pos in range(plan.ctx)
            ]
            out = self._outputs(self._decode(entries))
            return [out[seq * n_rows : (seq + 1) * n_rows] for seq in range(len(chunks))]
        # one chunk (n_seq is 1) over several batches; keep a copy of each batch's rows
        (chunk,) = chunks
        parts: list[np.ndarray] = []
        for start in range(0, plan.ctx, plan.n_batch):
            end = min(start + plan.n_batch, plan.ctx)
            n_out = self._decode([(chunk[pos], pos, 0, pos >= first) for pos in range(start, end)])
            if n_out:
                parts.append(self._outputs(n_out).copy())
        return [np.concatenate(parts)]


def log_softmax64(rows: np.ndarray) -> np.ndarray:
    """log-softmax of each row, in float64."""
    x = rows.astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    x -= np.log(np.exp(x).sum(axis=1, keepdims=True))
    return x


def token_nll(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log p(target) for each row of float32 logits, as llama-perplexity computes it.

    max + log(sum(exp(x - max))) - x[target]: the differences and exponentials in float32 (as
    llama.cpp's expf), their sum and the result in float64, a block of rows at a time.
    """
    if len(rows) != len(targets):
        raise ValueError(f"{len(rows)} rows of logits for {len(targets)} targets")
    out = np.empty(len(targets), dtype=np.float64)
    for s in range(0, len(targets), ROW_BLOCK):
        x = rows[s : s + ROW_BLOCK]
        t = targets[s : s + ROW_BLOCK]
        top = x.max(axis=1, keepdims=True)
        total = np.exp(x - top).sum(axis=1, dtype=np.float64)
        picked = x[np.arange(len(t)), t].astype(np.float64)
        out[s : s + len(t)] = top[:, 0].astype(np.float64) + np.log(total) - picked
    return out
