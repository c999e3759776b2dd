"""The binding's logits rows: `Context.logits(row)` is llama.cpp's row `row` of the last decode,
whether it is read from the one view of the whole buffer (every row of the batch asked for its
logits) or through `llama_get_logits_ith` (some did not)."""

from __future__ import annotations

from typing import Any

import llama_cpp as lc
import numpy as np

from ozfig.llama.batch import Batch
from ozfig.llama.model import ContextParams


def llama_row(ctx: Any, row: int, n_vocab: int) -> np.ndarray:
    return np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx.ptr, row), shape=(n_vocab,)).copy()


def test_rows_of_interleaved_sequences_are_llama_cpps_rows(model: Any) -> None:
    # two sequences' tokens interleaved in one batch (llama.cpp splits it per sequence and puts the
    # outputs back in batch order), then batches of other sizes (its buffer may move)
    words = [model.tokenize(text) for text in ("The capital of France is", "Once upon a time there")]
    params = ContextParams(n_ctx=512, n_batch=64, n_seq=3, threads=2, kv_unified=False)
    with model.new_context(params) as ctx, Batch(64) as batch:
        pos = [0, 0, 0]
        for n_tokens in (2 * min(len(w) for w in words), 1, 3, 12):
            batch.clear()
            for i in range(n_tokens):
                seq = i % 3
                batch.add(words[seq % 2][i % len(words[seq % 2])], pos[seq], seq, True)
                pos[seq] += 1
            assert batch.every_row_out
            assert ctx.decode(batch) == 0
            for row in range(n_tokens):
                ours = ctx.logits(row).copy()
                assert np.array_equal(ours, llama_row(ctx, row, model.n_vocab)), (n_tokens, row)
            assert not np.array_equal(ctx.logits(0), ctx.logits(n_tokens - 1)) or n_tokens == 1


def test_a_prompt_chunk_with_one_output_reads_its_row_through_llama_cpp(model: Any) -> None:
    prompt = model.tokenize("The capital of France is Paris. The capital of Italy is")
    params = ContextParams(n_ctx=256, n_batch=64, n_seq=1, threads=2)
    with model.new_context(params) as ctx, Batch(64) as batch:
        for pos, token in enumerate(prompt):
            batch.add(token, pos, 0, pos == len(prompt) - 1)
        assert not batch.every_row_out
        assert ctx.decode(batch) == 0
        last = len(prompt) - 1
        assert np.array_equal(ctx.logits(last), llama_row(ctx, last, model.n_vocab))
        # the same answer as a fresh decode with every row out
        ctx.clear()
        batch.clear()
        for pos, token in enumerate(prompt):
            batch.add(token, pos, 0, True)
        assert ctx.decode(batch) == 0
        assert int(ctx.logits(last).argmax()) == int(llama_row(ctx, last, model.n_vocab).argmax())


def test_one_argmax_over_a_steps_rows_picks_each_rows_first_largest_logit(model: Any) -> None:
    words = [model.tokenize(text) for text in ("The capital of France is", "Once upon a time there", "1, 2, 3,")]
    params = ContextParams(n_ctx=512, n_batch=64, n_seq=3, threads=2, kv_unified=False)
    with model.new_context(params) as ctx, Batch(64) as batch:
        for seq, tokens in enumerate(words):  # each prompt, then one step of the three together
            batch.clear()
            batch.add_span(tokens, 0, seq, True)
            assert ctx.decode(batch) == 0
            assert ctx.argmax_rows(2) is None  # a prompt chunk's rows are not all output rows
        batch.clear()
        batch.add_rows([17, 29, 31], [len(w) for w in words], [0, 1, 2])
        assert ctx.decode(batch) == 0
        picks = ctx.argmax_rows(3)
        assert picks == [int(np.argmax(llama_row(ctx, row, model.n_vocab))) for row in range(3)]
        assert ctx.argmax_rows(2) == picks[:2]
        assert ctx.argmax_rows(4) is None  # more rows than the decode had
