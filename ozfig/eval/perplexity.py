"""`ozfig eval perplexity`: llama-perplexity's number, computed through llama-cpp-python."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ozfig.llama.model import LlamaModel

from .chunks import ChunkPlan, ChunkSettings, NllStats, chunk_input, chunk_targets, groups
from .errors import EvalError
from .logits import LlamaChunkLogits, LogitsSource, token_nll

log = logging.getLogger(__name__)

# called after each chunk with (chunks done, running PPL)
ChunkCallback = Callable[[int, float], None]


@dataclass(frozen=True)
class PerplexityResult:
    ppl: float
    ppl_error: float
    mean_nll: float
    n_tokens: int  # tokens of the whole text
    scored_tokens: int
    ctx: int
    n_chunk: int
    n_seq: int
    n_batch: int
    running: list[float]  # PPL after each chunk
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "ppl": self.ppl,
            "ppl_error": self.ppl_error,
            "mean_nll": self.mean_nll,
            "tokens": self.n_tokens,
            "scored_tokens": self.scored_tokens,
            "ctx": self.ctx,
            "chunks": self.n_chunk,
            "sequences_per_decode": self.n_seq,
            "batch": self.n_batch,
            "running_ppl": self.running,
            "seconds": round(self.seconds, 3),
        }


def text_tokens(model: LlamaModel, text: str) -> list[int]:
    """The text tokenized once, as llama-perplexity does: BOS added when the model adds one."""
    return model.tokenize(text, add_special=True, parse_special=False)


def bos_for(model: LlamaModel) -> int | None:
    """The token each chunk starts with, or None where the model adds no BOS."""
    return model.bos if model.add_bos and model.bos >= 0 else None


def score_chunks(
    source: LogitsSource,
    tokens: Sequence[int],
    plan: ChunkPlan,
    bos: int | None,
    on_chunk: ChunkCallback | None = None,
) -> NllStats:
    """Feed the plan's chunks to `source`; the NLL statistics of the scored positions."""
    stats = NllStats()
    done = 0
    for group in groups(plan):
        inputs = [chunk_input(tokens, i, plan.ctx, bos) for i in group]
        for i, rows in zip(group, source.logits(inputs), strict=True):
            # rows: positions first .. ctx-1; the last one predicts past the chunk and is unused
            stats.add(token_nll(rows[:-1], chunk_targets(tokens, i, plan)))
            done += 1
            if on_chunk is not None:
                on_chunk(done, stats.ppl)
    return stats


def perplexity(
    model: LlamaModel,
    text: str,
    settings: ChunkSettings,
    *,
    on_plan: Callable[[ChunkPlan, int], None] | None = None,
    on_chunk: ChunkCallback | None = None,
) -> PerplexityResult:
    if model.add_eos:
        raise EvalError(
            f"{model.path} adds an EOS token when tokenizing; llama-perplexity refuses such models"
        )
    tokens = text_tokens(model, text)
    plan = settings.plan(len(tokens))
    log.info(
        "perplexity over %d chunks of %d tokens (%d tokens in the text), %d per decode",
        plan.n_chunk,
        plan.ctx,
        len(tokens),
        plan.n_seq,
    )
    if on_plan is not None:
        on_plan(plan, len(tokens))
    started = time.perf_counter()
    with LlamaChunkLogits(model, plan, settings.threads) as source:
        stats = score_chunks(source, tokens, plan, bos_for(model), on_chunk)
    return PerplexityResult(
        ppl=stats.ppl,
        ppl_error=stats.ppl_error,
        mean_nll=stats.mean,
        n_tokens=len(tokens),
        scored_tokens=stats.count,
        ctx=plan.ctx,
        n_chunk=plan.n_chunk,
        n_seq=plan.n_seq,
        n_batch=plan.n_batch,
        running=stats.running,
        seconds=time.perf_counter() - started,
    )
