"""llama-perplexity's chunking, BOS handling and +/- formula, on cases small enough to check by hand."""

import math
from collections.abc import Sequence

import numpy as np
import pytest

from ozfig.eval.chunks import NllStats, chunk_input, chunk_targets, groups, mean_and_uncertainty, plan_chunks
from ozfig.eval.errors import EvalError, TextTooShortError
from ozfig.eval.perplexity import score_chunks

BOS = 1


def test_plan_follows_llama_perplexity() -> None:
    # 20 tokens, ctx 8: 20 // 8 = 2 chunks; the last 4 tokens are never used
    plan = plan_chunks(20, ctx=8, batch=2048)
    assert (plan.n_chunk, plan.first, plan.scored_per_chunk) == (2, 4, 3)
    # batch / ctx chunks per decode, capped by the number of chunks
    assert plan_chunks(100, ctx=8, batch=16).n_seq == 2
    assert plan_chunks(100, ctx=8, batch=16).n_batch == 16
    assert plan_chunks(100, ctx=8, batch=20).n_batch == 16  # min(batch, n_seq * ctx)
    assert plan_chunks(20, ctx=8, batch=2048).n_seq == 2
    # a batch smaller than a chunk: several decodes per chunk
    small = plan_chunks(100, ctx=8, batch=3)
    assert (small.n_seq, small.n_batch, small.decodes_per_chunk) == (1, 3, 3)
    # --chunks caps; 0 or None means all
    assert plan_chunks(100, ctx=8, chunks=3).n_chunk == 3
    assert plan_chunks(100, ctx=8, chunks=50).n_chunk == 12
    assert [list(g) for g in groups(plan_chunks(100, ctx=8, chunks=5, batch=16))] == [[0, 1], [2, 3], [4]]


def test_text_shorter_than_two_chunks_is_refused() -> None:
    plan_chunks(16, ctx=8)
    with pytest.raises(TextTooShortError, match="15 tokens; --ctx 8 needs at least 16"):
        plan_chunks(15, ctx=8)
    with pytest.raises(EvalError, match="--ctx must be at least"):
        plan_chunks(100, ctx=2)


def test_first_token_of_each_chunk_becomes_bos_targets_stay_original() -> None:
    tokens = list(range(100, 120))  # 20 tokens
    assert chunk_input(tokens, 0, 8, BOS) == [BOS, 101, 102, 103, 104, 105, 106, 107]
    assert chunk_input(tokens, 1, 8, BOS) == [BOS, 109, 110, 111, 112, 113, 114, 115]
    assert chunk_input(tokens, 1, 8, None) == list(range(108, 116))  # a model without BOS
    plan = plan_chunks(len(tokens), ctx=8)
    # positions 4, 5, 6 predict the tokens at positions 5, 6, 7
    assert chunk_targets(tokens, 0, plan).tolist() == [105, 106, 107]
    assert chunk_targets(tokens, 1, plan).tolist() == [113, 114, 115]


class FakeSource:
    """Logits chosen so that p(target) is known: 1/2 where the target is even, 1/4 where odd (vocab 4)."""

    n_vocab = 4

    def __init__(self, first: int) -> None:
        self.first = first
        self.seen: list[list[int]] = []

    def logits(self, chunks: Sequence[Sequence[int]]) -> list[np.ndarray]:
        out = []
        for chunk in chunks:
            self.seen.append(list(chunk))
            rows = np.zeros((len(chunk) - self.first, self.n_vocab), dtype=np.float32)
            for r, pos in enumerate(range(self.first, len(chunk) - 1)):
                target = chunk[pos + 1]
                if target % 2 == 0:
                    rows[r, target] = math.log(3.0)  # 3 / (3 + 1 + 1 + 1) = 1/2
            rows[-1] = 123.0  # the last position predicts past the chunk: must be ignored
            out.append(rows)
        return out


def test_ppl_and_its_error_by_hand() -> None:
    # ctx 6: positions 3 and 4 scored per chunk; 2 chunks -> targets 0,1 | 2,3 ...
    tokens = [3, 2, 2, 2, 0, 1, 3, 3, 3, 3, 2, 3]
    plan = plan_chunks(len(tokens), ctx=6, batch=6)
    source = FakeSource(plan.first)
    running: list[tuple[int, float]] = []
    stats = score_chunks(source, tokens, plan, bos=BOS, on_chunk=lambda n, p: running.append((n, p)))
    assert source.seen == [[BOS, 2, 2, 2, 0, 1], [BOS, 3, 3, 3, 2, 3]]
    # scored targets: 0 (p 1/2), 1 (p 1/4), 2 (p 1/2), 3 (p 1/4)
    ln2 = math.log(2.0)
    assert stats.count == 4
    assert stats.mean == pytest.approx(1.5 * ln2)
    assert stats.ppl == pytest.approx(2**1.5)  # 2.8284
    # var = E[nll^2] - E[nll]^2 = ln2^2 (2.5 - 2.25); error = PPL * sqrt(var / (n - 1))
    assert stats.ppl_error == pytest.approx(2**1.5 * 0.5 * ln2 / math.sqrt(3))  # 0.56595
    assert stats.ppl_error == pytest.approx(0.565952, abs=1e-6)
    # running PPL after chunk 1: targets 0 and 1 -> exp(1.5 ln2) as well
    assert running == [(1, pytest.approx(2**1.5)), (2, pytest.approx(2**1.5))]


def test_uniform_predictions_give_the_vocabulary_size_and_no_error() -> None:
    stats = NllStats()
    stats.add(np.full(10, math.log(4.0)))
    assert stats.ppl == pytest.approx(4.0)
    assert stats.ppl_error == 0.0  # zero variance: llama.cpp prints no estimate


def test_kld_report_uncertainty_matches_llama_cpp() -> None:
    values = np.array([0.1, 0.2, 0.4, 0.3, 0.0, 0.5, 0.1, 0.2, 0.3, 0.6, 0.2])
    mean, err = mean_and_uncertainty(float(values.sum()), float((values**2).sum()), values.size)
    assert mean == pytest.approx(values.mean())
    assert err == pytest.approx(values.std() / math.sqrt(values.size - 1))
    # llama.cpp gives no uncertainty for 10 values or fewer
    assert mean_and_uncertainty(float(values[:10].sum()), float((values[:10] ** 2).sum()), 10)[1] == 0.0
