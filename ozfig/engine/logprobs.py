"""Log probabilities of generated tokens, from the logits before sampling (as llama-server gives them).

Computed only for a job that asks (`SamplingParams.logprobs`): a log-softmax over the
vocabulary row in numpy, and the most likely alternatives by a partial sort. The logit bias,
grammar and penalties of the sampler chain do not change them: they are the model's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token, its log probability and the `top` most likely tokens at its position."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()  # (token, logprob), most likely first


def token_logprob(logits: np.ndarray, token: int, n_top: int) -> TokenLogprob:
    """The log-softmax of `logits` at `token`, and its `n_top` largest entries."""
    peak = float(logits.max())
    log_total = peak + math.log(float(np.exp(logits - peak, dtype=np.float64).sum()))
    top: tuple[tuple[int, float], ...] = ()
    if n_top > 0:
        n = min(n_top, logits.shape[0])
        best = np.argpartition(logits, -n)[-n:]
        best = best[np.lexsort((best, -logits[best]))]  # most likely first, ties by token id
        top = tuple((int(i), float(logits[i]) - log_total) for i in best)
    return TokenLogprob(token, float(logits[token]) - log_total, top)
