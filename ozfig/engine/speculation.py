"""Speculative decoding: which proposed tokens each running answer has verified in a step.

A running sequence normally puts one token (its last) into the step's decode. With speculation
it also puts up to k proposed tokens after it, with logits for each row; the runner then samples
row after row with the sequence's own sampler chain and keeps going while the sampled token is
the proposed one (llama.cpp's rule: greedy answers are those of plain decoding, sampled ones
follow the same distribution). The rejected cells are removed.

Modes (`--speculative`):
- `off`: one token per sequence per step, the plain path;
- `ngram`: every sequence proposes what its own n-grams say (`ngram.py`), up to `--draft-max`, or,
  where they say little, what followed the same tokens in a recent answer (a question asked
  again: `AnswerMemory`);
- `draft`: a draft model proposes (`draft.py`, `--draft-model`), up to `--draft-max`;
- `auto` (default): as `ngram`, but each sequence proposes only as many tokens as pay for
  themselves. A proposed token is accepted with some chance `a` after the one before it (so the j-th
  with chance a^j), learnt per length of the match the proposal came from
  (`spec_model.MatchAcceptance`: an answer that has been quoting its prompt for 20 tokens very
  likely goes on), and it costs one more decode row, learnt from the decodes this engine runs
  (`spec_model.DecodeCost`; timed at start by `calibrate`, again between two steps if the decodes
  run show that timing wrong: `cost_probe`). So on a machine or at a batch size where verification is not
  nearly free, proposals shrink or stop, for one sequence or for all; a sequence whose proposals
  keep failing stops proposing for a while. With a draft model the proposals are its own, sized the
  same way from its acceptance and its cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .cost_probe import CostProbe
from .ngram import AnswerMemory, NgramIndex
from .spec_model import Acceptance, DecodeCost, MatchAcceptance, expected

if TYPE_CHECKING:
    from ..llama.batch import Batch
    from ..llama.context import Context
    from .draft import Drafter
    from .jobs import EngineStats, FinishReason, Job, Slot

    # the runner's accounting of one token sampled from a row: (events it lets out, why the answer ends or None)
    Take = Callable[[Slot, int, int, float], tuple[list[object], FinishReason | None]]

SpeculationMode = Literal["auto", "ngram", "draft", "off"]


@dataclass
class _Sequence:
    job: Job
    index: NgramIndex
    record: Acceptance  # this sequence's own: when it falls below VETO, it stops proposing for a while
    source: Acceptance | None = None  # the record the current proposal's chance was taken from


class Speculator:
    """The proposals of every running sequence, their outcomes, and the cost model."""

    VETO = 0.3  # a sequence whose own acceptance rate is below this proposes nothing (auto)

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
        self.probe = CostProbe()  # timings of decodes at start, and whether to trust them
        self.matches = MatchAcceptance()  # n-gram proposals, by match length
        self.drafts = Acceptance(0.7, 1.0, MatchAcceptance.DECAY)  # the draft model's proposals
        self.sequences: dict[int, _Sequence] = {}
        self.memory = AnswerMemory()  # recent answers of every request, for questions asked again
        self.stats = stats
        self.draft_round = 0.0  # seconds of one proposing round of the draft model (recent mean)

    def _sequence(self, slot: Slot) -> _Sequence:
        seq = self.sequences.get(slot.seq)
        if seq is None or seq.job is not slot.job:
            index = NgramIndex(slot.job.prompt)
            index.append(slot.last)  # the first answer token, sampled at the end of the prompt
            seq = self.sequences[slot.seq] = _Sequence(slot.job, index, Acceptance(0.67, 1.0))
        return seq

    def plan(self, running: list[Slot], room: int) -> float:
        """Set each slot's `draft`: the tokens it proposes this step (at most `room` in all).
        Returns the seconds the draft model spent in llama_decode (0 without one)."""
        for slot in running:
            if slot.draft:
                slot.draft = []
        if self.mode == "auto" and self._threshold(len(running)) >= self._best_rate():
            return 0.0  # no proposal can pay at this batch size on this machine: no look-ups either
        offers: list[tuple[Slot, _Sequence, int, Acceptance | None, list[int]]] = []
        for slot in running:
            # no draft past the answer's max_tokens or its sequence's cells
            limit = min(self.draft_max, slot.job.max_tokens - slot.generated - 1, self.n_ctx - slot.pos - 1)
            seq = self._sequence(slot)
            if limit <= 0 or (self.mode == "auto" and seq.record.rate < self.VETO):
                seq.record.rest()
                continue
            if self.drafter is not None:
                offers.append((slot, seq, limit, self.drafts, []))
                continue
            tokens, length = seq.index.propose(limit)
            if length < AnswerMemory.MIN_MATCH and len(self.memory):
                remembered, matched = self.memory.continuation(seq.index.tokens, limit)
                if matched > length and remembered:
                    tokens, length = remembered, matched
            if tokens:
                offers.append((slot, seq, len(tokens), self.matches.of(length), tokens))
        if self.mode == "auto":
            limits = self._sized([(k, acc.rate if acc else 0.0) for _, _, k, acc, _ in offers], len(running))
        else:
            limits = [k for _, _, k, _, _ in offers]
        wanted: list[tuple[Slot, _Sequence, int]] = []
        for (slot, seq, _, acc, tokens), k in zip(offers, limits, strict=True):
            k = min(k, room)
            if k <= 0:
                continue
            room -= k
            seq.source = acc
            if self.drafter is None:
                slot.draft = tokens[:k]
            else:
                wanted.append((slot, seq, k))
        if self.drafter is None or not wanted:
            return 0.0
        drafts = self.drafter.propose([(slot.seq, seq.index.tokens, k) for slot, seq, k in wanted])
        for slot, _, k in wanted:
            slot.draft = drafts.get(slot.seq, [])[:k]
        seconds, round_seconds, rounds = self.drafter.take_seconds()
        if rounds:
            mean = round_seconds / rounds
            self.draft_round = mean if self.draft_round == 0.0 else 0.9 * self.draft_round + 0.1 * mean
        return seconds

    def _threshold(self, base: int) -> float:
        """What a proposed token must be worth (in expected tokens) in a plain step of `base` rows."""
        a, b = self.cost.line()
        return (b + self.draft_round / base) * base / (a + b * base)

    def _best_rate(self) -> float:
        if self.drafter is not None:
            return self.drafts.rate
        return max(acc.rate for acc in self.matches.buckets)

    def _sized(self, offers: list[tuple[int, float]], base: int) -> list[int]:
        """How many of each offer's tokens pay (offers: (tokens offered, acceptance rate)), for a
        step of `base` running sequences."""
        if not offers:
            return []
        a, b = self.cost.line()
        # a proposed token costs a decode row (and, with a draft model, its share of a draft round)
        extra = b + self.draft_round / base
        threshold = extra * base / (a + b * base)  # against a plain step's tokens per second
        limits = [min(k, self._worth(rate, threshold)) for k, rate in offers]
        # with the proposals, a step yields more tokens per second: each row must then do better
        rows = base + sum(limits)
        tokens = base + sum(expected(rate, k) for (_, rate), k in zip(offers, limits, strict=True) if k)
        threshold = extra * tokens / (a + b * rows + self.draft_round * max(limits))
        limits = [min(k, self._worth(rate, threshold)) for k, rate in offers]
        if base > 1 and self.stats.queue_depth == 0 and not self._every_answer_gains(offers, limits, base):
            return [0] * len(offers)
        return limits

    def _every_answer_gains(self, offers: list[tuple[int, float]], limits: list[int], base: int) -> bool:
        """Whether every one of the `base` running answers decodes faster with these proposals.

        Asked when nobody waits for a slot: then an answer that ends sooner frees a slot that nobody
        takes, while every row added slows every running answer, so the answers of a group of users
        end no sooner as a whole and those with nothing to propose end later (8 essay streams, some
        with long matches in earlier answers: tokens/s of the whole group 0.91-0.95 of `off`, the
        slowest answers 1.3x slower). With a queue, the tokens/s of all answers together is what
        counts (`_sized`). With a draft model, its rounds (one per token of the longest proposal)
        lengthen the step too."""
        if len(offers) < base or not all(limits):
            return False
        a, b = self.cost.line()
        plain = a + b * base
        step = a + b * (base + sum(limits)) + self.draft_round * max(limits)
        return all((1.0 + expected(rate, k)) * plain > step for (_, rate), k in zip(offers, limits, strict=True))

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
            seq.record.record(len(slot.draft), accepted)
            if seq.source is not None:
                seq.source.record(len(slot.draft), accepted)
            self.stats.draft_tokens_total += len(slot.draft)
            self.stats.draft_tokens_accepted_total += accepted

    def ended(self, slot: Slot) -> None:
        """`slot`'s answer is over: its end goes into the memory of answers."""
        seq = self.sequences.pop(slot.seq, None)
        # with a draft model the memory is never asked (`plan`): nothing to keep
        if seq is not None and seq.job is slot.job and self.drafter is None:
            self.memory.remember(seq.index.tokens, len(slot.job.prompt))

    def decoded(self, rows: int, seconds: float) -> None:
        self.cost.observe(rows, seconds)
        self.probe.check(rows, seconds)

    def calibrate(self, ctx: Context, batch: Batch) -> None:
        """Time decodes of a few sizes on this machine (in sequence 0, emptied after), so that
        the first answers are sized from the machine's costs, not from the prior."""
        points = self.probe.time(ctx, batch)
        if points is not None:
            self.cost.measured(points)

    def recalibrate(self, ctx: Context, batch: Batch) -> None:
        """Between steps: if the decodes run since the last timing showed it wrong (taken on a busy
        machine, `cost_probe`), time again and learn the costs anew."""
        points = self.probe.retime(ctx, batch)
        if points is not None:
            self.cost = DecodeCost()
            self.cost.measured(points)
