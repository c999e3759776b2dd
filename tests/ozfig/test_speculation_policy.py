"""How much `--speculative auto` proposes (`ozfig.engine.speculation`), model-free: the acceptance
record, the decode cost learnt from timings, and the per-step plan they give."""

from __future__ import annotations

import codecs

import pytest

from ozfig.engine.jobs import EngineStats, Job, Slot
from ozfig.engine.sampling import SamplingParams
from ozfig.engine.spec_model import Acceptance, DecodeCost, MatchAcceptance, expected
from ozfig.engine.speculation import Speculator
from ozfig.engine.stops import StopMatcher

PASSAGE = list(range(100, 140))


def slot_for(seq: int, prompt: list[int], first: int, max_tokens: int = 500) -> Slot:
    """A slot whose prompt has been decoded and its first answer token sampled."""
    job = Job(prompt, max_tokens, SamplingParams(temperature=0.0))
    decoder = codecs.getincrementaldecoder("utf-8")()
    slot = Slot(seq, job, None, StopMatcher(()), decoder)  # type: ignore[arg-type]  # never sampled here
    slot.fed = slot.pos = len(prompt)
    slot.generated = 1
    slot.last = first
    return slot


def quoting(seq: int, **kw: int) -> Slot:
    """An answer about to repeat PASSAGE, which its prompt holds (and ends by starting it again)."""
    return slot_for(seq, [1, 2, *PASSAGE, 3, *PASSAGE[:4]], PASSAGE[4], **kw)


def test_acceptance_follows_what_was_accepted_and_drifts_back_when_idle() -> None:
    record = Acceptance()
    assert record.rate == 0.5
    assert Acceptance(0.9, 2.0).rate == pytest.approx(0.9)
    for _ in range(10):
        record.record(8, 8)
    assert record.rate > 0.95
    for _ in range(20):
        record.record(8, 0)
    low = record.rate
    assert low < 0.1
    for _ in range(100):
        record.rest()
    assert low < record.rate < 0.5


def test_the_decode_cost_line_is_fitted_from_timings() -> None:
    cost = DecodeCost()
    assert cost.line() == (1.0 - DecodeCost.PRIOR_SLOPE, DecodeCost.PRIOR_SLOPE)
    for _ in range(3):
        for rows in range(1, 33):
            cost.observe(rows, 0.010 + 0.001 * rows)
    a, b = cost.line()
    assert a == pytest.approx(0.010, rel=0.05) and b == pytest.approx(0.001, rel=0.05)


def test_the_costs_measured_at_start_stay_the_prior_when_one_batch_size_is_seen_for_long() -> None:
    cost = DecodeCost()
    cost.measured([(1, 0.010), (9, 0.050)])  # a row costs half a one-row decode
    for _ in range(2000):  # long after: only plain steps of 8 rows
        cost.observe(8, 0.045)
    a, b = cost.line()
    assert b / (a + b) == pytest.approx(0.5, rel=0.05)
    assert a + 8 * b == pytest.approx(0.045)


def test_longer_matches_start_from_better_odds_and_learn_apart() -> None:
    matches = MatchAcceptance()
    rates = [matches.of(n).rate for n in (2, 3, 4, 8, 12, 20, 64)]
    assert rates == sorted(rates) and rates[0] < 0.5 < rates[-1]
    for _ in range(50):
        matches.of(2).record(4, 0)
    assert matches.of(2).rate < 0.1 and matches.of(20).rate == rates[-2]


def test_with_one_batch_size_seen_the_slope_is_the_prior() -> None:
    cost = DecodeCost()
    for _ in range(50):
        cost.observe(8, 0.020)
    a, b = cost.line()
    assert a + 8 * b == pytest.approx(0.020)
    assert b / (a + b) == pytest.approx(DecodeCost.PRIOR_SLOPE, rel=0.1)


def test_expected_accepted_tokens() -> None:
    assert expected(1.0, 5) == 5
    assert expected(0.5, 1) == 0.5
    assert expected(0.5, 3) == pytest.approx(0.5 + 0.25 + 0.125)


def speculator(mode: str = "auto", draft_max: int = 16, n_ctx: int = 1000) -> Speculator:
    return Speculator(mode, draft_max, n_ctx, EngineStats())  # type: ignore[arg-type]


def test_ngram_proposes_the_quoted_passage_up_to_draft_max() -> None:
    spec = speculator("ngram", draft_max=8)
    slot = quoting(0)
    spec.plan([slot], room=100)
    assert slot.draft == PASSAGE[5:13]


def test_drafts_stop_at_max_tokens_the_context_and_the_batch() -> None:
    spec = speculator("ngram", draft_max=16)
    slot = quoting(0, max_tokens=4)  # 1 generated: the 2nd..4th token come from this step
    spec.plan([slot], room=100)
    assert slot.draft == PASSAGE[5:7]  # two proposals + the token sampled after them
    near_end = speculator("ngram", n_ctx=slot.pos + 3)
    slot = quoting(0)
    near_end.plan([slot], room=100)
    assert len(slot.draft) == 2
    slots = [quoting(0), quoting(1)]
    spec.plan(slots, room=20)
    assert [len(s.draft) for s in slots] == [16, 4]


def test_auto_proposes_when_rows_are_cheap_and_stops_when_they_are_not() -> None:
    spec = speculator("auto", draft_max=16)
    for rows in range(1, 40):  # a row costs 1% of a step
        spec.decoded(rows, 0.010 + 0.0001 * rows)
    slot = quoting(0)
    spec.plan([slot], room=500)
    assert 0 < len(slot.draft) < 16, "a match of 5 tokens starts at even odds: worth a few rows at 1%"
    for _ in range(20):  # matches of this length have been accepted since
        spec.matches.of(5).record(16, 16)
    spec.plan([slot], room=500)
    assert slot.draft == PASSAGE[5:21]

    costly = speculator("auto", draft_max=16)
    for _ in range(3):
        for rows in range(1, 40):  # a row costs as much as a whole step
            costly.decoded(rows, 0.010 * rows)
    slots = [quoting(seq) for seq in range(8)]
    costly.plan(slots, room=500)
    assert all(s.draft == [] for s in slots)


def test_a_sequence_whose_proposals_fail_stops_proposing_and_tries_again_later() -> None:
    spec = speculator("auto", draft_max=16)
    for rows in range(1, 40):
        spec.decoded(rows, 0.010 + 0.0005 * rows)
    slot = quoting(0)
    spec.plan([slot], room=500)
    assert slot.draft
    for _ in range(5):
        spec.sequences[0].record.record(8, 0)
    steps_without = 0
    while True:
        spec.plan([slot], room=500)
        if slot.draft:
            break
        steps_without += 1
        assert steps_without < 500, "never tried again"
    assert steps_without > 5


def test_when_nobody_waits_proposals_are_made_only_when_every_running_answer_gains() -> None:
    def plan(quoting_answers: int, waiting: int) -> list[int]:
        spec = speculator("auto", draft_max=16)
        spec.stats.queue_depth = waiting
        for rows in range(1, 40):  # a row costs 5% of a one-row step
            spec.decoded(rows, 0.010 + 0.0005 * rows)
        for _ in range(30):
            spec.matches.of(5).record(8, 8)
        slots = [quoting(seq) for seq in range(quoting_answers)]
        slots += [slot_for(seq, list(range(1000 + 50 * seq, 1040 + 50 * seq)), 7) for seq in range(quoting_answers, 8)]
        spec.plan(slots, room=500)
        return [len(s.draft) for s in slots]

    assert plan(1, waiting=2)[0] > 0  # a queue: the one quoting answer's tokens raise the whole rate
    assert plan(1, waiting=0) == [0] * 8  # nobody waits: it would end sooner, the seven others later
    assert all(k > 0 for k in plan(8, waiting=0))  # every answer quotes: every one gains


class CountingDrafter:
    """A draft model's stand-in: proposes tokens 7, 8, 9, ... and says its rounds took no time
    (so the round time set on the speculator stays)."""

    def propose(self, wanted: list[tuple[int, list[int], int]]) -> dict[int, list[int]]:
        return {seq: list(range(7, 7 + k)) for seq, _, k in wanted}

    def take_seconds(self) -> tuple[float, float, int]:
        return 0.0, 0.0, 0


def test_when_nobody_waits_a_draft_models_rounds_count_in_the_step() -> None:
    def plan(waiting: int = 0, short: bool = True) -> list[int]:
        spec = Speculator("auto", 16, 1000, EngineStats(), CountingDrafter())  # type: ignore[arg-type]
        spec.stats.queue_depth = waiting
        for rows in range(1, 40):  # a row costs 5% of a one-row step
            spec.decoded(rows, 0.010 + 0.0005 * rows)
        for _ in range(40):
            spec.drafts.record(10, 9)  # the draft model's tokens are accepted 9 times in 10
        spec.draft_round = 0.004  # a draft round costs 40% of a one-row step
        # seven answers with room for long proposals; the eighth, if short, two tokens from its max_tokens
        slots = [quoting(seq) for seq in range(7)] + [quoting(7, max_tokens=3 if short else 500)]
        spec.plan(slots, room=500)
        return [len(s.draft) for s in slots]

    assert plan(short=False) == [3] * 8  # three rounds and 24 rows: every answer still gains
    # the short answer's one token does not pay for the others' rows and three draft rounds
    # (without the rounds in the step it would seem to: 1.9 tokens in a step 1.8 times a plain one)
    assert plan() == [0] * 8
    assert plan(waiting=2) == [3] * 7 + [1]  # with a queue, all answers' tokens/s together count
