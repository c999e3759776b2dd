"""Sampling settings of one request and the llama.cpp sampler chain built from them.

Sampling runs inside llama.cpp (`SamplerChain.sample` reads the logits where they are):
no logits are copied into Python per token, unless the request asks for logprobs
(`logprobs.py`) or has a grammar (JSON schema, tool calls; a lazy one passes everything until
its trigger), which checks the chain's pick (`ozfig.llama.constrained`). A logit bias comes
first in the chain, then the usual samplers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..limits import TEMPERATURE_DEFAULT, TOP_P_DEFAULT
from ..llama.constrained import ConstrainedSampler, check_grammar
from ..llama.grammar import Grammar
from ..llama.model import LlamaModel
from ..llama.sampler import SamplerChain

if TYPE_CHECKING:
    from ..llama.context import Context

__all__ = ["Sampler", "SamplingParams", "build_sampler", "check_grammar"]


class Sampler(Protocol):
    """What a sequence samples with: a `SamplerChain`, or one under a grammar (`ConstrainedSampler`)."""

    argmax_only: bool  # it picks the first of the largest logits, and keeps no state

    def sample(self, ctx: Context, row: int) -> int: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = TEMPERATURE_DEFAULT
    top_p: float = TOP_P_DEFAULT
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    ignore_eos: bool = False  # keep generating past end-of-generation tokens (benchmarks)
    grammar: Grammar | None = None  # the answer's grammar (JSON schema, tool calls)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token, bias added to its logit)
    logprobs: int | None = None  # deliver each token's logprob and this many top alternatives
    visible_controls: tuple[int, ...] = ()  # control tokens whose text is delivered (a tool-call opener)


def build_sampler(params: SamplingParams, model: LlamaModel) -> Sampler:
    """A new sampler for one sequence; the caller closes it. Under a grammar, the chain is asked
    first and the grammar checks its pick (`ConstrainedSampler`). GrammarError if the grammar does
    not parse (check it when the request comes in: `check_grammar`)."""
    chain = build_chain(params, model.n_vocab)
    if params.grammar is None:
        return chain
    try:
        return ConstrainedSampler(chain, model, params.grammar)
    except Exception:
        chain.close()
        raise


def build_chain(params: SamplingParams, n_vocab: int) -> SamplerChain:
    """The chain without the grammar: the logit bias first, then the usual samplers."""
    chain = SamplerChain()
    if params.logit_bias:
        chain.logit_bias(n_vocab, dict(params.logit_bias))
    if params.temperature <= 0.0:
        add_penalties(chain, params, n_vocab)
        return chain.greedy()
    if params.top_k > 0:
        chain.top_k(params.top_k)
    add_penalties(chain, params, n_vocab)
    if params.top_p < 1.0:
        chain.top_p(params.top_p)
    if params.min_p > 0.0:
        chain.min_p(params.min_p)
    seed = params.seed if params.seed is not None else random.getrandbits(32)
    return chain.temperature(params.temperature).dist(seed)


def add_penalties(chain: SamplerChain, params: SamplingParams, n_vocab: int) -> None:
    """Repetition penalties, when asked for (after top-k: they are slow on the whole vocabulary)."""
    if params.repeat_penalty == 1.0 and params.frequency_penalty == 0.0 and params.presence_penalty == 0.0:
        return
    chain.penalties(
        n_vocab, params.repeat_last_n, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
    )
