"""Speculative decoding: which proposed tokens each running answer has verified in a step.

A running sequence normally puts one token (its last) into the step's decode. With speculation
it also puts up to k proposed tokens after it, with logits for each row; the runner then samples
row after row with the sequence's own sampler chain and keeps going while the sampled token is
the proposed one (llama.cpp's rule: greedy answers are those of plain decoding, sampled ones
follow the same distribution). The rejected cells are removed.

Modes (`--speculative`):
- `off`: one token per sequence per step, the plain path;
- `ngram`: every sequence proposes what its own n-grams say (`ngram.py`), up to `--draft-max`;
- `draft`: a draft model proposes (`draft.py`, `--draft-model`), up to `--draft-max`;
- `auto` (default): as `ngram`, but each sequence proposes only as many tokens as pay for
  themselves: with `a` its recent acceptance rate (`Acceptance`), the j-th proposed token is
  accepted with chance a^j, and it costs one more decode row. The cost of a row is learnt from
  the decodes this engine has run (`DecodeCost`), so on a machine or at a batch size where
  verification is not nearly free, proposals shrink or stop, for one sequence or for all. With a
  draft model the proposals are its own, sized the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .ngram import NgramIndex

if TYPE_CHECKING:
    from ..llama.context import Context
    from .draft import Drafter
    from .jobs import EngineStats, FinishReason, Job, Slot

    # the runner's accounting of one token sampled from a row: (events it lets out, why the answer ends or None)
    Take = Callable[[Slot, int, int, float], tuple[list[object], FinishReason | None]]

SpeculationMode = Literal["auto", "ngram", "draft", "off"]


class Acceptance:
    """How often one sequence's proposals are accepted: decayed counts of accepted tokens and of
    rejections (a proposal ends in at most one), a per-token acceptance rate = hits / (hits + misses)."""

    DECAY = 0.7  # per verified proposal: a few failed proposals in a row count more than a long good run
    REST = 0.985  # per step without a proposal: back toward the prior, so the sequence is tried again
    PRIOR = 1.0  # hits and misses to start from (rate 0.5)

    def __init__(self) -> None:
        self.hits = self.misses = self.PRIOR

    @property
    def rate(self) -> float:
        return self.hits / (self.hits + self.misses)

    def record(self, proposed: int, accepted: int) -> None:
        self.hits = self.hits * self.DECAY + accepted
        self.misses = self.misses * self.DECAY + (accepted < proposed)

    def rest(self) -> None:
        p, r = self.PRIOR, self.REST
        self.hits = p + (self.hits - p) * r
        self.misses = p + (self.misses - p) * r


class DecodeCost:
    """Seconds one decode of n rows takes on this machine, as a line a + b·n fitted to the recent
    decodes (decayed sums). Until decodes of several sizes were seen, the slope leans on a prior:
    a row `PRIOR_SLOPE` of a one-row decode, the cost of checking a proposal being nearly free."""

    MEMORY = 256  # decodes
    PRIOR_SLOPE = 0.02
    PRIOR_WEIGHT = 4.0  # rows² of spread the prior is worth

    def __init__(self) -> None:
        self.w = self.n = self.nn = self.c = self.nc = 0.0

    def observe(self, rows: int, seconds: float) -> None:
        d = 1.0 - 1.0 / self.MEMORY
        self.w = self.w * d + 1.0
        self.n = self.n * d + rows
        self.nn = self.nn * d + rows * rows
        self.c = self.c * d + seconds
        self.nc = self.nc * d + rows * seconds

    def line(self) -> tuple[float, float]:
        """(a, b): a decode of n rows takes a + b·n seconds; (1, PRIOR_SLOPE) before any decode."""
        if self.w <= 0.0:
            return 1.0, self.PRIOR_SLOPE
        mean_n, mean_c = self.n / self.w, self.c / self.w
        var = max(self.nn / self.w - mean_n * mean_n, 0.0)
        cov = self.nc / self.w - mean_n * mean_c
        prior = self.PRIOR_SLOPE * mean_c / (1.0 + self.PRIOR_SLOPE * mean_n)
        slope = max((cov + prior * self.PRIOR_WEIGHT) / (var + self.PRIOR_WEIGHT), 0.0)
        return max(mean_c - slope * mean_n, 1e-9), slope


def expected(rate: float, k: int) -> float:
    """Accepted tokens to expect of k proposed, each accepted with chance `rate` after the one before."""
    return float(k) if rate >= 1.0 else rate * (1.0 - rate**k) / (1.0 - rate)


@dataclass
class _Sequence:
    job: Job
    index: NgramIndex
    acceptance: Acceptance


class Speculator:
    """The proposals of every running sequence, their outcomes, and the cost model."""

    def __init__(
        self,
        mode: SpeculationMode,
        draft_max: int,
        n_ctx: int,
        stats: EngineStats,
        drafter: Drafter | None = None,
    ) -> None:
        self.mode = mode
        self.drafter = drafter
        self.draft_max = draft_max
        self.n_ctx = n_ctx  # cells per sequence
        self.cost = DecodeCost()
        self.sequences: dict[int, _Sequence] = {}
        self.stats = stats
        self.draft_round = 0.0  # seconds of one proposing round of the draft model (recent mean)

    def _sequence(self, slot: Slot) -> _Sequence:
        seq = self.sequences.get(slot.seq)
        if seq is None or seq.job is not slot.job:
            index = NgramIndex(slot.job.prompt)
            index.append(slot.last)  # the first answer token, sampled at the end of the prompt
            seq = self.sequences[slot.seq] = _Sequence(slot.job, index, Acceptance())
        return seq

    def plan(self, running: list[Slot], room: int) -> float:
        """Set each slot's `draft`: the tokens it proposes this step (at most `room` in all).
        Returns the seconds the draft model spent in llama_decode (0 without one)."""
        wanted: list[tuple[Slot, int]] = []
        for slot, limit in zip(running, self._limits(running), strict=True):
            # no draft past the answer's max_tokens or its sequence's cells
            limit = min(limit, room, slot.job.max_tokens - slot.generated - 1, self.n_ctx - slot.pos - 1)
            slot.draft = []
            if limit <= 0:
                continue
            if self.drafter is None:
                slot.draft, _ = self._sequence(slot).index.propose(limit)
                room -= len(slot.draft)
            else:
                wanted.append((slot, limit))
                room -= limit
        if self.drafter is None or not wanted:
            return 0.0
        drafts = self.drafter.propose([(s.seq, self._sequence(s).index.tokens, k) for s, k in wanted])
        for slot, limit in wanted:
            slot.draft = drafts.get(slot.seq, [])[:limit]
        seconds, round_seconds, rounds = self.drafter.take_seconds()
        if rounds:
            mean = round_seconds / rounds
            self.draft_round = mean if self.draft_round == 0.0 else 0.9 * self.draft_round + 0.1 * mean
        return seconds

    def _limits(self, running: list[Slot]) -> list[int]:
        if self.mode != "auto":  # ngram, draft: as many as proposed
            return [self.draft_max] * len(running)
        rates = [self._sequence(slot).acceptance.rate for slot in running]
        a, b = self.cost.line()
        base = len(running)
        # a proposed token costs a decode row (and, with a draft model, its share of a draft round)
        extra = b + self.draft_round / base
        threshold = extra * base / (a + b * base)  # against a plain step's tokens per second
        limits = [self._worth(rate, threshold) for rate in rates]
        # with the proposals, a step yields more tokens per second: each row must then do better
        rows = base + sum(limits)
        tokens = base + sum(expected(r, k) for r, k in zip(rates, limits, strict=True) if k)
        threshold = extra * tokens / (a + b * rows + self.draft_round * max(limits))
        limits = [self._worth(rate, threshold) for rate in rates]
        for slot, k in zip(running, limits, strict=True):
            if k == 0:
                self.sequences[slot.seq].acceptance.rest()
        return limits

    def _worth(self, rate: float, threshold: float) -> int:
        """How many proposed tokens pay: the j-th is accepted with chance rate^j, worth a row when above `threshold`."""
        if rate <= threshold:
            return 0
        if threshold <= 0.0 or rate >= 1.0:
            return self.draft_max
        return min(self.draft_max, int(math.log(threshold) / math.log(rate)))

    def verify(
        self, slot: Slot, ctx: Context, take: Take, now: float, fed: Callable[[int, int], None]
    ) -> tuple[list[object], FinishReason | None, int]:
        """Sample `slot`'s rows while they confirm its draft, each token counted by `take`; the
        accepted draft tokens stay in the KV cache (`fed(seq, token)` told), the rest are removed.
        Returns the events let out (the tokens' text joined), why the answer ends (None: it goes
        on; "error": the cells could not be removed) and the number of tokens generated."""
        draft = slot.draft
        sampled: list[int] = []
        events: list[object] = []
        while True:
            row = slot.row + len(sampled)
            token = slot.sampler.sample(ctx, row)
            sampled.append(token)
            new, reason = take(slot, token, row, now)
            for event in new:
                if isinstance(event, str) and events and isinstance(events[-1], str):
                    events[-1] += event
                else:
                    events.append(event)
            accepted = len(sampled) - 1
            if reason is not None or accepted >= len(draft) or token != draft[accepted]:
                break
            fed(slot.seq, token)  # the draft's cell at this position holds it
            slot.pos += 1
        accepted = len(sampled) - 1
        self.verified(slot, accepted, sampled)
        if accepted < len(draft) and not ctx.seq_remove(slot.seq, slot.pos, -1):
            reason = "error"
        return events, reason, len(sampled)

    def verified(self, slot: Slot, accepted: int, sampled: list[int]) -> None:
        """`slot`'s step is done: `accepted` of its draft kept, `sampled` the tokens it generated."""
        seq = self.sequences.get(slot.seq)
        if seq is None or seq.job is not slot.job:
            return
        seq.index.extend(sampled)
        if slot.draft:
            seq.acceptance.record(len(slot.draft), accepted)
            self.stats.draft_tokens_total += len(slot.draft)
            self.stats.draft_tokens_accepted_total += accepted

    def decoded(self, rows: int, seconds: float) -> None:
        self.cost.observe(rows, seconds)
