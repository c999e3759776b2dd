"""`ozfig eval kld`: what a quantization cost, token by token, against the base GGUF.

Both models see the same chunks as in `eval perplexity`; at every scored position the KL
divergence KL(base || model) of the two next-token distributions is computed exactly, in
float64, from both models' full logits (llama-perplexity stores the base's log-probabilities
rounded to 16 bits in a file instead). The summary follows llama-perplexity's
`--kl-divergence` report: PPL of both, their ratio, KLD mean and percentiles, Δp, same top token.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ozfig.llama.model import LlamaModel

from .chunks import (
    ChunkPlan,
    ChunkSettings,
    chunk_input,
    chunk_targets,
    covariance,
    groups,
    mean_and_uncertainty,
)
from .errors import ModelMismatchError
from .logits import ROW_BLOCK, LlamaChunkLogits, LogitsSource, log_softmax64
from .perplexity import bos_for, text_tokens

log = logging.getLogger(__name__)

# called after each chunk with (chunks done, running mean KLD, running same-top fraction)
KldCallback = Callable[[int, float, float], None]

PERCENTILES = (99.9, 99.0, 95.0, 90.0, 50.0, 10.0, 5.0, 1.0, 0.1)


@dataclass
class TokenComparison:
    """Per scored token: KL(base||model), both NLLs, and whether both models' top token agree."""

    kld: np.ndarray
    nll_base: np.ndarray
    nll_model: np.ndarray
    same_top: np.ndarray

    @staticmethod
    def concat(parts: Sequence[TokenComparison]) -> TokenComparison:
        return TokenComparison(
            kld=np.concatenate([p.kld for p in parts]),
            nll_base=np.concatenate([p.nll_base for p in parts]),
            nll_model=np.concatenate([p.nll_model for p in parts]),
            same_top=np.concatenate([p.same_top for p in parts]),
        )


def compare_rows(base_rows: np.ndarray, model_rows: np.ndarray, targets: np.ndarray) -> TokenComparison:
    n = len(targets)
    out = TokenComparison(
        kld=np.empty(n), nll_base=np.empty(n), nll_model=np.empty(n), same_top=np.empty(n, dtype=bool)
    )
    for s in range(0, n, ROW_BLOCK):
        b, m, t = base_rows[s : s + ROW_BLOCK], model_rows[s : s + ROW_BLOCK], targets[s : s + ROW_BLOCK]
        lb, lm = log_softmax64(b), log_softmax64(m)
        rows = np.arange(len(t))
        out.kld[s : s + len(t)] = np.maximum((np.exp(lb) * (lb - lm)).sum(axis=1), 0.0)
        out.nll_base[s : s + len(t)] = -lb[rows, t]
        out.nll_model[s : s + len(t)] = -lm[rows, t]
        out.same_top[s : s + len(t)] = b.argmax(axis=1) == m.argmax(axis=1)
    return out


def _pm(value: float, error: float) -> dict[str, float]:
    return {"value": value, "error": error}


@dataclass(frozen=True)
class KldResult:
    tokens: TokenComparison
    n_tokens: int
    ctx: int
    n_chunk: int
    seconds: float

    @property
    def count(self) -> int:
        return int(self.tokens.kld.size)

    def summary(self) -> dict[str, object]:
        t, n = self.tokens, self.count
        nll_m = mean_and_uncertainty(float(t.nll_model.sum()), float(np.square(t.nll_model).sum()), n)
        nll_b = mean_and_uncertainty(float(t.nll_base.sum()), float(np.square(t.nll_base).sum()), n)
        cov = covariance(
            float(t.nll_model.sum()), float(t.nll_base.sum()), float((t.nll_model * t.nll_base).sum()), n
        )
        ppl_m, ppl_b = math.exp(nll_m[0]), math.exp(nll_b[0])
        ln_ratio = nll_m[0] - nll_b[0]
        ln_ratio_err = math.sqrt(max(nll_m[1] ** 2 + nll_b[1] ** 2 - 2.0 * cov, 0.0))
        kld = mean_and_uncertainty(float(t.kld.sum()), float(np.square(t.kld).sum()), n)
        p_diff = np.exp(-t.nll_model) - np.exp(-t.nll_base)
        dp = mean_and_uncertainty(float(p_diff.sum()), float(np.square(p_diff).sum()), n)
        mse = mean_and_uncertainty(float(np.square(p_diff).sum()), float(np.power(p_diff, 4).sum()), n)
        rms = math.sqrt(mse[0])
        same = float(t.same_top.mean())
        return {
            "chunks": self.n_chunk,
            "ctx": self.ctx,
            "tokens": self.n_tokens,
            "scored_tokens": n,
            "ppl_model": _pm(ppl_m, ppl_m * nll_m[1]),
            "ppl_base": _pm(ppl_b, ppl_b * nll_b[1]),
            "ln_ppl_ratio": _pm(ln_ratio, ln_ratio_err),
            "ppl_ratio": _pm(math.exp(ln_ratio), math.exp(ln_ratio) * ln_ratio_err),
            "kld_mean": _pm(kld[0], kld[1]),
            "kld_max": float(t.kld.max()),
            "kld_percentiles": {f"{p:g}": float(np.percentile(t.kld, p)) for p in PERCENTILES},
            "kld_min": float(t.kld.min()),
            "delta_p_mean": _pm(dp[0], dp[1]),
            "delta_p_rms": _pm(rms, 0.5 / rms * mse[1] if rms > 0 else 0.0),
            "same_top": _pm(same, math.sqrt(same * (1.0 - same) / (n - 1)) if n > 1 else 0.0),
            "seconds": round(self.seconds, 3),
        }


def compare_chunks(
    base: LogitsSource,
    model: LogitsSource,
    tokens: Sequence[int],
    plan: ChunkPlan,
    bos: int | None,
    on_chunk: KldCallback | None = None,
) -> TokenComparison:
    parts: list[TokenComparison] = []
    kld_sum, same_sum, count = 0.0, 0, 0
    for group in groups(plan):
        inputs = [chunk_input(tokens, i, plan.ctx, bos) for i in group]
        for i, b, m in zip(group, base.logits(inputs), model.logits(inputs), strict=True):
            part = compare_rows(b[:-1], m[:-1], chunk_targets(tokens, i, plan))
            parts.append(part)
            kld_sum += float(part.kld.sum())
            same_sum += int(part.same_top.sum())
            count += part.kld.size
            if on_chunk is not None:
                on_chunk(len(parts), kld_sum / count, same_sum / count)
    return TokenComparison.concat(parts)


def check_same_vocabulary(base: LlamaModel, model: LlamaModel, tokens: list[int], text: str) -> None:
    if base.n_vocab != model.n_vocab:
        raise ModelMismatchError(
            f"{base.path} has {base.n_vocab} tokens in its vocabulary and {model.path} {model.n_vocab}: "
            "KL divergence compares two GGUFs of the same model"
        )
    if text_tokens(model, text) != tokens:
        raise ModelMismatchError(
            f"{base.path} and {model.path} tokenize the text differently: they are not the same model"
        )


def kl_divergence(
    base: LlamaModel,
    model: LlamaModel,
    text: str,
    settings: ChunkSettings,
    *,
    on_plan: Callable[[ChunkPlan, int], None] | None = None,
    on_chunk: KldCallback | None = None,
) -> KldResult:
    tokens = text_tokens(base, text)
    check_same_vocabulary(base, model, tokens, text)
    plan = settings.plan(len(tokens))
    if on_plan is not None:
        on_plan(plan, len(tokens))
    started = time.perf_counter()
    threads = settings.threads
    with LlamaChunkLogits(base, plan, threads) as b, LlamaChunkLogits(model, plan, threads) as m:
        compared = compare_chunks(b, m, tokens, plan, bos_for(base), on_chunk)
    return KldResult(
        tokens=compared,
        n_tokens=len(tokens),
        ctx=plan.ctx,
        n_chunk=plan.n_chunk,
        seconds=time.perf_counter() - started,
    )
