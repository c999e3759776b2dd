"""Sampling settings of one request and the llama.cpp sampler chain built from them.

Sampling runs inside llama.cpp (`llama_sampler_sample` reads the logits where they are):
no logits are copied into Python per token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import llama_cpp as lc


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    ignore_eos: bool = False  # keep generating past end-of-generation tokens (benchmarks)


def build_sampler(params: SamplingParams, n_vocab: int) -> lc.llama_sampler_p:
    """A new sampler chain for one sequence; free it with `lc.llama_sampler_free`."""
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    if params.temperature <= 0.0:
        add_penalties(chain, params, n_vocab)
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        return chain
    if params.top_k > 0:
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(params.top_k))
    add_penalties(chain, params, n_vocab)
    if params.top_p < 1.0:
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(params.top_p, 1))
    if params.min_p > 0.0:
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_min_p(params.min_p, 1))
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(params.temperature))
    seed = params.seed if params.seed is not None else random.getrandbits(32)
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return chain


def add_penalties(chain: lc.llama_sampler_p, params: SamplingParams, n_vocab: int) -> None:
    """Repetition penalties, when asked for (after top-k: they are slow on the whole vocabulary)."""
    if params.repeat_penalty == 1.0 and params.frequency_penalty == 0.0 and params.presence_penalty == 0.0:
        return
    lc.llama_sampler_chain_add(
        chain,
        lc.llama_sampler_init_penalties(
            n_vocab,
            params.repeat_last_n,
            params.repeat_penalty,
            params.frequency_penalty,
            params.presence_penalty,
        ),
    )
