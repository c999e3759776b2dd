"""Logprobs from a logits row (model-free): a log-softmax and its largest entries."""

from __future__ import annotations

import numpy as np

from ozfig.engine.logprobs import token_logprob


def test_logprobs_are_the_log_softmax_and_the_top_entries_in_order() -> None:
    rng = np.random.default_rng(7)
    logits = (rng.standard_normal(50_000) * 4).astype(np.float32)
    logits[123] = logits[456] = 30.0  # a tie at the top: the lower id first
    exact = logits.astype(np.float64) - np.log(np.exp(logits.astype(np.float64)).sum())
    got = token_logprob(logits, 999, 5)
    assert abs(got.logprob - exact[999]) < 1e-5
    order = sorted(range(len(logits)), key=lambda i: (-exact[i], i))[:5]
    assert [t for t, _ in got.top] == order and order[:2] == [123, 456]
    assert all(abs(lp - exact[t]) < 1e-5 for t, lp in got.top)
    assert token_logprob(logits, 999, 0).top == ()
