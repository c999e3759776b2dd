"""The engine through its own interface: submit, stream, stop, cancel, overload."""

import asyncio
import time

import pytest

from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.errors import OverloadedError, PromptTooLongError

GREEDY = SamplingParams(temperature=0.0)


def make_engine(model, **kw) -> Engine:
    cfg = dict(
        slots=4, ctx=512, batch=256, threads=2, max_waiting=8, request_timeout=900.0, prompt_cache="off"
    )
    cfg.update(kw)
    return Engine(model, EngineConfig(**cfg))


def ask(formatter, text: str) -> list[int]:
    return formatter.tokens([{"role": "user", "content": text}])


async def run_one(engine: Engine, prompt: list[int], max_tokens: int, sampling=GREEDY) -> tuple[str, object]:
    async with engine.generate(Job(prompt, max_tokens, sampling)) as gen:
        text = await gen.text()
    return text, gen.result


def test_length_limit_and_usage(model, formatter) -> None:
    engine = make_engine(model)
    try:
        text, result = asyncio.run(run_one(engine, ask(formatter, "Count from one to fifty."), 8))
    finally:
        engine.close()
    assert text
    assert result.reason == "length"
    assert result.completion_tokens == 8
    assert result.prompt_tokens == len(ask(formatter, "Count from one to fifty."))


def test_stop_string_ends_the_answer_and_is_not_returned(model, formatter) -> None:
    engine = make_engine(model)
    prompt = ask(formatter, "Write the numbers 1, 2, 3, 4, 5, 6, 7 separated by commas.")
    try:
        full, _ = asyncio.run(run_one(engine, prompt, 40))
        assert "3" in full
        cut, result = asyncio.run(run_one(engine, prompt, 40, SamplingParams(temperature=0.0, stop=("3",))))
    finally:
        engine.close()
    assert result.reason == "stop"
    assert "3" not in cut
    assert full.startswith(cut)


async def pieces(engine: Engine, prompt: list[int], max_tokens: int) -> list[str]:
    async with engine.generate(Job(prompt, max_tokens, GREEDY)) as gen:
        return [p async for p in gen]


def test_concurrent_greedy_answers_equal_the_same_answers_alone(model, formatter) -> None:
    questions = [f"Tell me one fact about the number {i}." for i in range(8)]
    engine = make_engine(model, slots=8, ctx=256)
    try:
        alone = [asyncio.run(pieces(engine, ask(formatter, q), 24)) for q in questions]

        async def together():
            return await asyncio.gather(*(pieces(engine, ask(formatter, q), 24) for q in questions))

        batched = asyncio.run(together())
    finally:
        engine.close()
    # A prompt is processed alone in fixed chunks and every sequence has its own KV stream, so
    # an answer does not depend on what is decoded beside it (bench/batch_invariance.py: 32/32).
    assert batched == alone


def test_identical_prompts_decoded_together_give_identical_answers(model, formatter) -> None:
    engine = make_engine(model, slots=8, ctx=256)

    async def together():
        return await asyncio.gather(
            *(run_one(engine, ask(formatter, "Tell me about cats."), 32) for _ in range(8))
        )

    try:
        answers = [t for t, _ in asyncio.run(together())]
    finally:
        engine.close()
    assert len(set(answers)) == 1
    assert engine.stats.requests_finished["length"] >= 8


def test_cancel_frees_the_slot_within_a_step(model, formatter) -> None:
    engine = make_engine(model, slots=1)

    async def scenario() -> int:
        gen = engine.submit(Job(ask(formatter, "Write a long story."), 400, GREEDY))
        async for _ in gen:
            break
        slot = next(s for s in engine.runner.slots if s is not None)
        at_cancel = slot.generated
        gen.cancel()
        engine.scheduler.wake()
        async for _ in gen:
            pass
        assert gen.result is not None and gen.result.reason == "cancelled"
        return gen.result.completion_tokens - at_cancel

    try:
        # counted in decode steps, not seconds (a loaded machine makes every step slow): the step
        # running when cancel() came may finish, and then the answer ends
        assert asyncio.run(scenario()) <= 1
        assert engine.scheduler.free_slots == 1
    finally:
        engine.close()


def test_leaving_the_block_early_cancels(model, formatter) -> None:
    engine = make_engine(model, slots=1)

    async def scenario() -> None:
        async with engine.generate(
            Job(ask(formatter, "Write a long story."), 400, GREEDY)
        ) as gen:
            async for _ in gen:
                break
        deadline = time.monotonic() + 60  # generous: the assertion is on the tokens, below
        while engine.scheduler.free_slots != 1:
            assert time.monotonic() < deadline, "slot not freed"
            await asyncio.sleep(0.02)
        finished = engine.stats.requests_finished
        assert finished["cancelled"] == 1 and finished["length"] == 0, finished

    try:
        asyncio.run(scenario())
    finally:
        engine.close()


def test_full_queue_is_refused(model, formatter) -> None:
    engine = make_engine(model, slots=1, max_waiting=1)

    async def scenario() -> None:
        prompt = ask(formatter, "Write a long story.")
        gens = [engine.submit(Job(prompt, 200, GREEDY)) for _ in range(2)]
        with pytest.raises(OverloadedError):
            engine.submit(Job(prompt, 200, GREEDY))
        for g in gens:
            g.cancel()
        engine.scheduler.wake()
        for g in gens:
            async for _ in g:
                pass

    try:
        asyncio.run(scenario())
    finally:
        engine.close()


def test_prompt_longer_than_the_context_is_refused(model) -> None:
    engine = make_engine(model, ctx=256)
    try:
        with pytest.raises(PromptTooLongError):
            engine.check_fits(300, 10)
        assert engine.check_fits(200, 100) == 56
    finally:
        engine.close()


def test_prompt_prefix_is_reused_and_answers_do_not_change(model, formatter) -> None:
    system = {"role": "system", "content": "You are a helpful and detailed assistant called OzFig"}
    first = formatter.tokens([system, {"role": "user", "content": "What is a cat?"}])
    second = formatter.tokens([system, {"role": "user", "content": "What is a dog?"}])
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    fresh = make_engine(model, slots=1, batch=8, prompt_cache="off")
    try:
        reference = [asyncio.run(run_one(fresh, p, 16))[0] for p in (first, second)]
    finally:
        fresh.close()
    engine = make_engine(model, slots=2, batch=8, prompt_cache="exact")
    try:
        a1, _ = asyncio.run(run_one(engine, first, 16))
        assert engine.stats.prompt_tokens_reused_total == 0
        # reused: whole prompt chunks (8 tokens here) computed exactly as a fresh run computes them
        a2, result = asyncio.run(run_one(engine, first, 16))
        exact = (len(first) - 1) // 8 * 8
        assert engine.stats.prompt_tokens_reused_total == exact > 0
        assert result.prompt_tokens == len(first)
        b, _ = asyncio.run(run_one(engine, second, 16))  # the system turn and the user turn's opening
        assert engine.stats.prompt_tokens_reused_total == exact + shared // 8 * 8
    finally:
        engine.close()
    assert [a1, b] == reference
    assert a2 == a1
