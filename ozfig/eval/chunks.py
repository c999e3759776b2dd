"""How llama.cpp's perplexity tool cuts a text into chunks, and the statistics it reports.

The text is tokenized once (with BOS when the model adds one); chunk i is tokens
[i*ctx, (i+1)*ctx), its first token replaced by BOS when the model adds one; only positions
ctx/2 .. ctx-2 are scored (each predicting the next token), so every scored token has at
least ctx/2 tokens of context. `n_seq` chunks are decoded together, each in its own sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import EvalError, TextTooShortError

MIN_CTX = 4


@dataclass(frozen=True)
class ChunkPlan:
    ctx: int  # tokens per chunk
    n_chunk: int  # chunks evaluated
    n_seq: int  # chunks decoded together, one sequence each
    n_batch: int  # tokens per llama_decode call

    @property
    def first(self) -> int:
        """The first position whose logits are kept."""
        return self.ctx // 2

    @property
    def scored_per_chunk(self) -> int:
        return self.ctx - self.first - 1

    @property
    def decodes_per_chunk(self) -> int:
        return -(-self.ctx // self.n_batch)


def plan_chunks(n_tokens: int, ctx: int, chunks: int | None = None, batch: int = 2048) -> ChunkPlan:
    """llama.cpp's chunking: at least two chunks, `--chunks` caps their number, `--batch` groups them."""
    if ctx < MIN_CTX:
        raise EvalError(f"--ctx must be at least {MIN_CTX} tokens, got {ctx}")
    if batch < 1:
        raise EvalError(f"--batch must be at least 1, got {batch}")
    if n_tokens < 2 * ctx:
        raise TextTooShortError(
            f"the text tokenizes to {n_tokens} tokens; --ctx {ctx} needs at least {2 * ctx} (two chunks). "
            "Use a longer text or a smaller --ctx."
        )
    n_chunk_max = n_tokens // ctx
    n_chunk = n_chunk_max if chunks is None or chunks <= 0 else min(chunks, n_chunk_max)
    # as llama-perplexity: n_seq = batch / ctx, and a batch never spans more than n_seq chunks;
    # ozfig also never reserves more sequences than there are chunks
    n_seq = min(max(1, batch // ctx), n_chunk)
    n_batch = min(batch, n_seq * ctx)
    return ChunkPlan(ctx=ctx, n_chunk=n_chunk, n_seq=n_seq, n_batch=n_batch)


@dataclass(frozen=True)
class ChunkSettings:
    """How a text is cut and decoded, as llama.cpp's -c, --chunks, -b and -t say."""

    ctx: int = 2048  # tokens per chunk
    chunks: int | None = None  # evaluate at most this many chunks (None: all)
    batch: int = 2048  # tokens per decode: batch/ctx chunks are decoded together
    threads: int = 0  # CPU threads (0: one per core)

    def plan(self, n_tokens: int) -> ChunkPlan:
        return plan_chunks(n_tokens, self.ctx, self.chunks, self.batch)


def chunk_input(tokens: Sequence[int], index: int, ctx: int, bos: int | None) -> list[int]:
    """The tokens decoded for chunk `index`: BOS (when the model adds one) in place of its first token."""
    chunk = list(tokens[index * ctx : (index + 1) * ctx])
    if bos is not None:
        chunk[0] = bos
    return chunk


def chunk_targets(tokens: Sequence[int], index: int, plan: ChunkPlan) -> np.ndarray:
    """The tokens predicted from positions first .. ctx-2 of chunk `index` (never the replaced first one)."""
    start = index * plan.ctx
    return np.asarray(tokens[start + plan.first + 1 : start + plan.ctx], dtype=np.int64)


def groups(plan: ChunkPlan) -> list[range]:
    """The chunk indices decoded together."""
    return [range(i, min(i + plan.n_seq, plan.n_chunk)) for i in range(0, plan.n_chunk, plan.n_seq)]


# --- statistics, as llama.cpp computes them ----------------------------------------------


def mean_and_uncertainty(total: float, total_sq: float, count: int) -> tuple[float, float]:
    """Mean and its standard error, the way llama.cpp's KL-divergence report computes them."""
    if count < 1:
        return 0.0, 0.0
    mean = total / count
    var = total_sq / count - mean * mean
    return mean, (math.sqrt(var / (count - 1)) if var > 0 and count > 10 else 0.0)


def covariance(sum_a: float, sum_b: float, sum_ab: float, count: int) -> float:
    if count < 10:
        return 0.0
    return (sum_ab / count - (sum_a / count) * (sum_b / count)) / (count - 1)


@dataclass
class NllStats:
    """Running sums of the per-token negative log-likelihood."""

    total: float = 0.0
    total_sq: float = 0.0
    count: int = 0
    running: list[float] = field(default_factory=list)

    def add(self, nll: np.ndarray) -> None:
        self.total += float(nll.sum())
        self.total_sq += float(np.square(nll).sum())
        self.count += int(nll.size)
        self.running.append(self.ppl)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def ppl(self) -> float:
        return math.exp(self.mean)

    @property
    def ppl_error(self) -> float:
        """llama-perplexity's `+/-`: PPL x sqrt(var(nll) / (count - 1)), var = E[nll^2] - E[nll]^2.

        0.0 where the variance is not positive (llama.cpp prints no estimate then).
        """
        if self.count < 2:
            return 0.0
        mean = self.mean
        var = self.total_sq / self.count - mean * mean
        return self.ppl * math.sqrt(var / (self.count - 1)) if var > 0 else 0.0
