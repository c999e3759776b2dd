"""The binding's sampler chain: a chain that is greedy alone picks with argmax over the row, and
that pick is the token llama.cpp's own greedy sampler picks from the same logits."""

from __future__ import annotations

from typing import Any

import llama_cpp as lc

from ozfig.engine.sampling import SamplingParams, build_chain
from ozfig.llama.batch import Batch
from ozfig.llama.model import ContextParams
from ozfig.llama.sampler import SamplerChain


def test_only_a_lone_greedy_sampler_takes_the_argmax_path(model: Any) -> None:
    plain = build_chain(SamplingParams(temperature=0.0), model.n_vocab)
    biased = build_chain(SamplingParams(temperature=0.0, logit_bias=((5, -100.0),)), model.n_vocab)
    penalised = build_chain(SamplingParams(temperature=0.0, repeat_penalty=1.3), model.n_vocab)
    sampled = build_chain(SamplingParams(temperature=0.7), model.n_vocab)
    try:
        assert plain.argmax_only
        assert not biased.argmax_only and not penalised.argmax_only and not sampled.argmax_only
    finally:
        for chain in (plain, biased, penalised, sampled):
            chain.close()


def test_the_argmax_path_picks_llama_cpps_greedy_token_on_every_row(model: Any) -> None:
    prompt = model.tokenize("The capital of France is Paris. The capital of Italy is Rome. The")
    params = ContextParams(n_ctx=256, n_batch=64, n_seq=1, threads=2)
    with model.new_context(params) as ctx, Batch(64) as batch, SamplerChain().greedy() as chain:
        for pos, token in enumerate(prompt):
            batch.add(token, pos, 0, True)  # logits on every row
        assert ctx.decode(batch) == 0
        assert chain.argmax_only
        for row in range(len(prompt)):
            ours = chain.sample(ctx, row)
            theirs = int(lc.llama_sampler_sample(chain.ptr, ctx.ptr, row))  # llama.cpp's greedy sampler
            assert ours == theirs
            assert ctx.logits(row)[ours] == ctx.logits(row).max()
