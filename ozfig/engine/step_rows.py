"""The rows of one decode step of the running answers, and their greedy tokens in one pass."""

from __future__ import annotations

from collections.abc import Callable

from ..llama.batch import Batch
from ..llama.context import Context
from .jobs import Slot


def add_step_rows(batch: Batch, running: list[Slot], fed: Callable[[int, int], None]) -> None:
    """Each running answer's last token (its row is `slot.row`) and, after it, its proposed tokens
    (`slot.draft`, verified by the rows' logits); `fed(seq, token)` is told of each last token."""
    tokens: list[int] = []
    positions: list[int] = []
    seqs: list[int] = []
    for slot in running:
        slot.row = len(tokens)
        tokens.append(slot.last)
        positions.append(slot.pos)
        seqs.append(slot.seq)
        fed(slot.seq, slot.last)
        slot.pos += 1
        if draft := slot.draft:
            tokens.extend(draft)
            positions.extend(range(slot.pos, slot.pos + len(draft)))
            seqs.extend([slot.seq] * len(draft))
    batch.add_rows(tokens, positions, seqs)


def greedy_tokens(ctx: Context, active: list[Slot]) -> list[int] | None:
    """Every slot's next token in one argmax over the decode's output rows, when every slot is
    greedy alone, proposes nothing and has its index for its row (a step of running answers);
    else None."""
    n = len(active)
    if n < 2 or not all(s.sampler.argmax_only and not s.draft and s.row == i for i, s in enumerate(active)):
        return None
    return ctx.argmax_rows(n)
