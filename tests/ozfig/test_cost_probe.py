"""`auto`'s timing of decodes (`ozfig.engine.cost_probe`): judged against the decodes run after it,
and taken again if it was wrong (a busy machine at start), without touching the cells
of any sequence."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ozfig.engine.cost_probe import CostProbe
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.engine.spec_model import DecodeCost

PASSAGE = (
    "The river Thames flows through southern England, passing Oxford, Reading and Windsor before it "
    "reaches London. In London it is crossed by many bridges, among them Tower Bridge, London Bridge "
    "and Westminster Bridge, and it meets the North Sea at its estuary east of the city."
)


def judged(seconds: float, decodes: int = CostProbe.CHECK, retimes: int = 0) -> bool:
    """Whether `decodes` one-row decodes of `seconds` make a timing of 10 ms per one-row decode stale."""
    probe = CostProbe()
    probe.line = (0.005, 0.005)
    probe.retimes = retimes
    for _ in range(decodes):
        probe.check(1, seconds)
    return probe.stale


def test_a_timing_is_stale_when_the_decodes_run_are_much_faster() -> None:
    assert judged(0.003)  # 0.3 of the prediction: timed on a busy machine
    assert not judged(0.008)  # 0.8: within what a cold start gives
    assert not judged(0.030)  # slower (a longer context, a busier machine now): the fit learns it
    assert not judged(0.003, decodes=CostProbe.CHECK - 1)  # judged on enough decodes only
    assert not judged(0.003, retimes=CostProbe.RETIMES)  # a machine busy for good is not timed forever


def test_decodes_far_larger_than_the_timed_ones_do_not_judge() -> None:
    probe = CostProbe()
    probe.line = (0.005, 0.005)
    for _ in range(CostProbe.CHECK):  # 64 rows in a tenth of the line's time: big batches are cheaper a row
        probe.check(64, 0.1 * (0.005 + 0.005 * 64))
    assert not probe.stale and not probe.ratios


def test_no_line_no_judgement() -> None:
    probe = CostProbe()
    for _ in range(3 * CostProbe.CHECK):
        probe.check(1, 0.001)
    assert not probe.stale


def quote(formatter: Any, n: int) -> list[int]:
    text = f"Repeat the following text exactly, word for word:\n\n{PASSAGE}"
    return formatter.tokens([{"role": "user", "content": text if n == 0 else f"{text}\n\n(Copy {n}.)"}])


def answer(engine: Engine, prompt: list[int]) -> tuple[str, int]:
    async def run() -> tuple[str, int]:
        async with engine.generate(Job(prompt, 64, SamplingParams(temperature=0.0))) as gen:
            text = await gen.text()
        return text, engine.stats.draft_tokens_accepted_total

    return asyncio.run(run())


def busy_start(engine: Engine, slower: float) -> CostProbe:
    """Make `engine`'s timing one taken on a machine `slower` times slower (as a busy one gives)."""
    spec = engine.runner.speculator
    assert spec is not None and spec.probe.line is not None
    a, b = spec.probe.line
    spec.probe.line = (a * slower, b * slower)
    spec.probe.best = {1: (a + b) * slower, 9: (a + 9 * b) * slower}
    spec.cost = DecodeCost()
    spec.cost.measured(sorted(spec.probe.best.items()))
    return spec.probe


@pytest.mark.parametrize("slots", [1, 2])  # timed after the running answer's cells / in the idle sequence
def test_a_timing_taken_on_a_busy_machine_is_taken_again(model, formatter, slots) -> None:
    plain = Engine(model, EngineConfig(slots=slots, ctx=1024, threads=2, speculative="off"))
    try:
        expected = [answer(plain, quote(formatter, n))[0] for n in range(3)]
    finally:
        plain.close()
    engine = Engine(model, EngineConfig(slots=slots, ctx=1024, threads=2, speculative="auto"))
    try:
        real = engine.runner.speculator.probe.line  # type: ignore[union-attr]
        probe = busy_start(engine, slower=5.0)
        first, accepted_first = answer(engine, quote(formatter, 0))  # timed again during this answer
        for _ in range(100):  # (the answer's last pieces may come before the engine thread's turn ends)
            if probe.retimes:
                break
            time.sleep(0.05)
        assert probe.retimes >= 1  # (once here; again if that timing too was slowed)
        assert probe.line is not None and real is not None
        assert probe.line[0] + probe.line[1] < 2.5 * (real[0] + real[1])  # a one-row decode: no longer 5x
        runner = engine.runner
        for seq in range(slots):  # every sequence holds the cells its cache entry says, no more
            assert runner.ctx.seq_pos_max(seq) == len(runner.cache.tokens[seq]) - 1
        second, _ = answer(engine, quote(formatter, 1))
        third, accepted_third = answer(engine, quote(formatter, 2))
    finally:
        engine.close()
    assert [first, second, third] == expected
    assert accepted_third - accepted_first > 40, "after the new timing, quotes have proposals accepted"


def test_without_the_new_timing_a_busy_start_stays(model, formatter) -> None:
    engine = Engine(model, EngineConfig(slots=2, ctx=1024, threads=2, speculative="auto"))
    try:
        probe = busy_start(engine, slower=5.0)
        probe.retimes = CostProbe.RETIMES  # as if timed again already
        _, accepted_first = answer(engine, quote(formatter, 0))
        answer(engine, quote(formatter, 1))
        _, accepted_third = answer(engine, quote(formatter, 2))
    finally:
        engine.close()
    assert probe.retimes == CostProbe.RETIMES
    assert accepted_third - accepted_first < 10, "the test's busy start should stop proposals"
