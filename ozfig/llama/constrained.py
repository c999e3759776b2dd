"""Sampling under a grammar without checking the whole vocabulary at every token.

llama.cpp's grammar sampler checks every candidate token against the grammar: over a 49k
vocabulary that takes tens of milliseconds per token on a CPU, longer than a small model's
decode. As llama.cpp's own `common_sampler` does, `ConstrainedSampler` first lets the chain
pick a token from the unconstrained logits and asks the grammar about that one token; only
when the grammar refuses it are the logits masked by the grammar and the chain run again.
Either way exactly one token is accepted, by the chain and by the grammar, so penalties and
the grammar follow what was emitted. The candidates live in one numpy buffer per sequence.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import llama_cpp as lc
import numpy as np

from ..errors import GrammarError
from .backend import clear_errors, recent_errors
from .sampler import SamplerChain

if TYPE_CHECKING:
    from .context import Context
    from .grammar import Grammar
    from .model import LlamaModel

TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data


def grammar_sampler(model: LlamaModel, grammar: Grammar) -> lc.llama_sampler_p:
    """A standalone llama.cpp grammar sampler (lazy with its triggers); GrammarError if it does not parse."""
    clear_errors()
    if grammar.lazy:
        patterns = (ctypes.c_char_p * max(len(grammar.patterns), 1))(*(p.encode() for p in grammar.patterns))
        tokens = (lc.llama_token * max(len(grammar.tokens), 1))(*grammar.tokens)
        ptr = lc.llama_sampler_init_grammar_lazy_patterns(
            model.vocab, grammar.gbnf.encode(), b"root", patterns, len(grammar.patterns), tokens, len(grammar.tokens)
        )
    else:
        ptr = lc.llama_sampler_init_grammar(model.vocab, grammar.gbnf.encode(), b"root")
    if not ptr:
        raise GrammarError(f"the grammar does not parse: {recent_errors()}")
    return ptr


def check_grammar(model: LlamaModel, grammar: Grammar) -> None:
    """GrammarError (a 400) unless llama.cpp parses the grammar (a few ms: before a request is queued)."""
    lc.llama_sampler_free(grammar_sampler(model, grammar))


class ConstrainedSampler:
    """A sampler chain and a grammar, used as one `SamplerChain` (`sample`, `accept`, `close`)."""

    argmax_only = False  # the grammar has its say on every token

    def __init__(self, chain: SamplerChain, model: LlamaModel, grammar: Grammar) -> None:
        self.chain = chain
        self.grammar: lc.llama_sampler_p | None = grammar_sampler(model, grammar)
        self.buffer = np.zeros(model.n_vocab, dtype=TOKEN_DATA)
        self.ids = np.arange(model.n_vocab, dtype=np.int32)
        self.one = np.zeros(1, dtype=TOKEN_DATA)
        self.resampled = 0  # tokens the grammar refused and the chain picked again

    def _array(self, buf: np.ndarray) -> lc.llama_token_data_array:
        data = buf.ctypes.data_as(ctypes.POINTER(lc.llama_token_data))
        return lc.llama_token_data_array(data, len(buf), -1, False)

    def _fill(self, ctx: Context, row: int) -> lc.llama_token_data_array:
        self.buffer["id"] = self.ids
        self.buffer["logit"] = ctx.logits(row)
        self.buffer["p"] = 0.0
        return self._array(self.buffer)

    def _pick(self, cur: lc.llama_token_data_array) -> int:
        lc.llama_sampler_apply(self.chain.ptr, ctypes.byref(cur))
        return int(cur.data[cur.selected].id)

    def allows(self, token: int) -> bool:
        """Whether the grammar takes `token` next."""
        self.one["id"], self.one["logit"], self.one["p"] = token, 0.0, 0.0
        cur = self._array(self.one)
        lc.llama_sampler_apply(self.grammar, ctypes.byref(cur))
        return bool(np.isfinite(self.one["logit"][0]))

    def sample(self, ctx: Context, row: int) -> int:
        token = self._pick(self._fill(ctx, row))
        if not self.allows(token):
            self.resampled += 1
            cur = self._fill(ctx, row)
            lc.llama_sampler_apply(self.grammar, ctypes.byref(cur))
            token = self._pick(cur)
        self.accept(token)
        return token

    def accept(self, token: int) -> None:
        self.chain.accept(token)
        lc.llama_sampler_accept(self.grammar, token)

    def reset(self) -> None:
        self.chain.reset()
        lc.llama_sampler_reset(self.grammar)

    def close(self) -> None:
        self.chain.close()
        if self.grammar is not None:
            lc.llama_sampler_free(self.grammar)
            self.grammar = None
