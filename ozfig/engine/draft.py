"""A draft model: a smaller model of the same vocabulary that proposes the next tokens.

`Drafter` keeps a context of the draft model with one KV sequence per slot. Before proposing
for a sequence it brings that sequence's cells up to the answer's tokens (the prompt at first,
then what the target accepted; cells of rejected proposals are removed), then decodes greedily,
one token per round for every proposing sequence together. The proposals are checked by the
target like any other (`speculation.py`). Catching up on a long prompt is done in chunks of at
most `n_batch` tokens per step, so a new answer does not hold the others up.

`check_vocabulary` is the start-up check: a draft model whose tokens are not the model's own
(ids and texts) could only propose nonsense, and is refused with an error that says so.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ModelFormatError
from ..llama.batch import Batch
from ..llama.model import ContextParams, LlamaModel
from .prefix_cache import common_prefix


def check_vocabulary(model: LlamaModel, draft: LlamaModel) -> None:
    """ModelFormatError unless `draft` has `model`'s vocabulary: the same size (llama.cpp allows a
    few padding tokens more or less), the same beginning and end tokens, the same token texts."""
    where = f"the draft model {draft.path!r} cannot propose tokens for {model.path!r}"
    if abs(model.n_vocab - draft.n_vocab) > 128:
        raise ModelFormatError(
            f"{where}: their vocabularies differ ({draft.n_vocab} tokens against {model.n_vocab}); "
            "use a draft model of the same family (e.g. Llama 3.2 1B for Llama 3.1 8B)"
        )
    if (model.bos, model.eos) != (draft.bos, draft.eos):
        raise ModelFormatError(
            f"{where}: their vocabularies differ (begin/end tokens {draft.bos}/{draft.eos} "
            f"against {model.bos}/{model.eos}); use a draft model of the same family"
        )
    for token in range(min(model.n_vocab, draft.n_vocab)):
        if model.token_text(token) != draft.token_text(token):
            raise ModelFormatError(
                f"{where}: their vocabularies differ (token {token} is {draft.token_text(token)!r} there, "
                f"{model.token_text(token)!r} here); use a draft model of the same family"
            )


def load_draft_model(model: LlamaModel, path: str, gpu_layers: int) -> LlamaModel:
    """The draft model at `path`, its vocabulary checked against `model`'s first (read alone, before
    the weights are loaded)."""
    vocabulary = LlamaModel(path, vocab_only=True)
    try:
        check_vocabulary(model, vocabulary)
    finally:
        vocabulary.close()
    return LlamaModel(path, gpu_layers)


class Drafter:
    """The draft model's context: one sequence per slot, and what each sequence's cells hold."""

    def __init__(self, model: LlamaModel, params: ContextParams) -> None:
        """`params`: those of the target's context (its sequences, cells, batch, threads)."""
        self.model = model
        self.n_batch = params.n_batch
        self.ctx = model.new_context(params)
        self.batch = Batch(self.n_batch)
        self.held: list[list[int]] = [[] for _ in range(params.n_seq)]
        self.seconds = 0.0  # in llama_decode, since the last `take_seconds`
        self.round_seconds = 0.0  # of which in proposing rounds (one token for every proposing sequence)
        self.rounds = 0

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    def take_seconds(self) -> tuple[float, float, int]:
        """Seconds in llama_decode since the last call, of which in proposing rounds, and how many rounds."""
        taken = self.seconds, self.round_seconds, self.rounds
        self.seconds = self.round_seconds = 0.0
        self.rounds = 0
        return taken

    def _decode(self, proposing: bool = False) -> bool:
        started = time.perf_counter()
        ok = self.ctx.decode(self.batch) == 0
        seconds = time.perf_counter() - started
        self.seconds += seconds
        if proposing:
            self.round_seconds += seconds
            self.rounds += 1
        return ok

    def propose(self, wanted: list[tuple[int, list[int], int]]) -> dict[int, list[int]]:
        """For each (sequence, its tokens so far, at most how many): the greedy continuation of the
        draft model (fewer, or none, while it is still catching up on the tokens)."""
        batch = self.batch
        batch.clear()
        rows: dict[int, int] = {}  # sequence -> the row whose logits give its next draft token
        row = -1
        for seq, tokens, limit in wanted:
            held = self.held[seq]
            keep = min(common_prefix(held, tokens), len(tokens) - 1)  # the last token is decoded again
            if keep < len(held):
                self.ctx.seq_remove(seq, keep, -1)
                del held[keep:]
            room = batch.capacity - batch.n_tokens
            feed = tokens[keep : keep + room]
            if feed:
                row = batch.add_span(feed, keep, seq, keep + len(feed) == len(tokens))
            held.extend(feed)
            if limit > 0 and len(held) == len(tokens):
                rows[seq] = row
        if batch.n_tokens == 0:
            return {}
        if not self._decode():
            self._forget([seq for seq, _, _ in wanted])
            return {}
        limits = {seq: limit for seq, _, limit in wanted}
        drafts: dict[int, list[int]] = {seq: [] for seq in rows}
        while rows:
            batch.clear()
            following: dict[int, int] = {}
            for seq, row in rows.items():
                token = int(np.argmax(self.ctx.logits(row)))
                drafts[seq].append(token)
                if len(drafts[seq]) < limits[seq]:
                    following[seq] = batch.add(token, len(self.held[seq]), seq, True)
                    self.held[seq].append(token)
            if not following:
                break
            if not self._decode(proposing=True):
                self._forget(list(following))
                break
            rows = following
        return drafts

    def _forget(self, seqs: list[int]) -> None:
        """After a failed decode: these sequences' cells are unknown, start them again."""
        for seq in seqs:
            self.ctx.seq_remove(seq, 0, -1)
            self.held[seq] = []
