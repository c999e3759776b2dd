"""Speculative decoding with the real model (`--speculative`): the answers are those of plain
decoding, whatever the proposals, the batch, and where the answer ends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.engine.speculation import Speculator
from ozfig.errors import DeadlineExceededError
from ozfig.llama.context import Context

GREEDY = SamplingParams(temperature=0.0)
PASSAGE = (
    "The river Thames flows through southern England, passing Oxford, Reading and Windsor before it "
    "reaches London. In London it is crossed by many bridges, among them Tower Bridge, London Bridge "
    "and Westminster Bridge, and it meets the North Sea at its estuary east of the city."
)
QUOTE = f"Repeat the following text exactly, word for word:\n\n{PASSAGE}"
QUESTIONS = [
    QUOTE,
    "Write a short story about a cat.",
    "What is the capital of France?",
    f"Summarize this text in one sentence:\n\n{PASSAGE}",
    "List five fruits.",
    "Explain how a bicycle works.",
    f"Quote the first sentence of this text:\n\n{PASSAGE}",
    "Tell me a fact about the moon.",
]


def make_engine(model: Any, mode: str, draft: Any = None, **kw: Any) -> Engine:
    cfg: dict[str, Any] = dict(slots=1, ctx=1024, batch=512, threads=2, prompt_cache="off", speculative=mode)
    cfg.update(kw)
    return Engine(model, EngineConfig(**cfg), draft=draft)


class Outcomes:
    """Every verified draft: (proposed, accepted, why the answer ended), and the KV cache checked
    after each: the sequence holds exactly the cells of the tokens fed, no rejected proposal."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[tuple[int, int, str | None]] = []
        spec = engine.runner.speculator
        assert spec is not None
        ctx = engine.runner.ctx
        verify = spec.verify

        def checked(slot, *args):  # type: ignore[no-untyped-def]
            text, reason, generated = verify(slot, *args)
            proposed = len(slot.draft)
            if proposed:
                self.seen.append((proposed, generated - 1, reason))
            assert ctx.seq_pos_max(slot.seq) == slot.pos - 1, "rejected draft cells were left"
            return text, reason, generated

        spec.verify = checked  # type: ignore[method-assign]


def ask(formatter: Any, text: str) -> list[int]:
    return formatter.tokens([{"role": "user", "content": text}])


async def answer(
    engine: Engine, prompt: list[int], max_tokens: int, sampling: SamplingParams = GREEDY
) -> tuple[str, str]:
    async with engine.generate(Job(prompt, max_tokens, sampling)) as gen:
        text = await gen.text()
    assert gen.result is not None
    return text, gen.result.reason


def answers(
    engine: Engine, prompts: list[list[int]], max_tokens: int, sampling: SamplingParams = GREEDY
) -> list[tuple[str, str]]:
    async def together() -> list[tuple[str, str]]:
        return list(await asyncio.gather(*(answer(engine, p, max_tokens, sampling) for p in prompts)))

    return asyncio.run(together())


@pytest.fixture(scope="module")
def plain(model: Any, formatter: Any) -> Iterator[dict[str, tuple[str, str]]]:
    """The plain answers (`off`), one at a time: the reference."""
    engine = make_engine(model, "off")
    try:
        yield {q: asyncio.run(answer(engine, ask(formatter, q), 96)) for q in QUESTIONS}
    finally:
        engine.close()


@pytest.mark.parametrize("mode", ["ngram", "auto"])
def test_greedy_answers_are_those_of_plain_decoding_one_at_a_time(model, formatter, plain, mode) -> None:
    engine = make_engine(model, mode)
    outcomes = Outcomes(engine)
    try:
        got = {q: asyncio.run(answer(engine, ask(formatter, q), 96)) for q in QUESTIONS}
        stats = engine.stats
    finally:
        engine.close()
    assert got == plain
    assert stats.draft_tokens_accepted_total > 40, "the quoting answers should have had proposals accepted"
    assert stats.draft_tokens_accepted_total == sum(accepted for _, accepted, _ in outcomes.seen)
    assert any(accepted < proposed for proposed, accepted, _ in outcomes.seen), "no proposal was rejected"


@pytest.mark.parametrize("mode", ["ngram", "auto"])
def test_greedy_answers_are_those_of_plain_decoding_eight_together(model, formatter, plain, mode) -> None:
    # `auto` with nobody waiting for a slot proposes only where every running answer gains; with
    # the eight questions on four slots some wait, and it proposes where all answers' tokens/s gain
    engine = make_engine(model, mode, slots=8 if mode == "ngram" else 4)
    Outcomes(engine)
    try:
        got = answers(engine, [ask(formatter, q) for q in QUESTIONS], 96)
        accepted = engine.stats.draft_tokens_accepted_total
    finally:
        engine.close()
    assert dict(zip(QUESTIONS, got, strict=True)) == plain
    assert accepted > 40


@pytest.mark.parametrize("mode", ["ngram", "auto"])
def test_a_question_asked_again_is_drafted_from_its_last_answer(model, formatter, plain, mode) -> None:
    story = "Write a short story about a cat."  # its own prompt offers little to propose
    engine = make_engine(model, mode, slots=2)
    try:
        first = asyncio.run(answer(engine, ask(formatter, story), 96))
        stats = engine.stats
        accepted_first = stats.draft_tokens_accepted_total
        generated_first = stats.completion_tokens_total
        # asked again, beside another question (the memory is shared by every sequence)
        again, other = answers(engine, [ask(formatter, story), ask(formatter, QUESTIONS[2])], 96)
        accepted_again = stats.draft_tokens_accepted_total - accepted_first
        remembered = len(engine.runner.speculator.memory)  # type: ignore[union-attr]
    finally:
        engine.close()
    assert first == again == plain[story] and other == plain[QUESTIONS[2]]
    assert accepted_first < generated_first / 2
    # the second answer came from the first one's proposals, nearly all of it (`ngram`: 149-158
    # accepted with the other answer's; 67 without the memory). `auto` proposes once the other,
    # short, answer has ended: while both run and nobody waits, proposals for one would slow the
    # other (103 accepted)
    bound = 1.15 if mode == "ngram" else 1.0
    assert accepted_again > bound * generated_first, (accepted_first, accepted_again, generated_first)
    assert remembered > 0


def test_off_is_the_plain_path(model) -> None:
    engine = make_engine(model, "off")
    try:
        assert engine.runner.speculator is None
    finally:
        engine.close()


def test_max_tokens_and_stop_strings_inside_an_accepted_run(model, formatter) -> None:
    prompt = ask(formatter, QUOTE)
    limits = list(range(20, 44, 3))
    reference = make_engine(model, "off")
    try:
        cut = [asyncio.run(answer(reference, prompt, n)) for n in limits]
        stops = ("Windsor", "Tower", "many b")
        stopped = [
            asyncio.run(answer(reference, prompt, 96, SamplingParams(temperature=0.0, stop=(s,))))
            for s in stops
        ]
    finally:
        reference.close()
    engine = make_engine(model, "ngram", draft_max=8)
    outcomes = Outcomes(engine)
    try:
        assert [asyncio.run(answer(engine, prompt, n)) for n in limits] == cut
        assert (
            stops
            and [
                asyncio.run(answer(engine, prompt, 96, SamplingParams(temperature=0.0, stop=(s,))))
                for s in stops
            ]
            == stopped
        )
    finally:
        engine.close()
    assert all(reason == "length" for _, reason in cut) and all(reason == "stop" for _, reason in stopped)
    ended_inside = [(p, a, r) for p, a, r in outcomes.seen if r is not None and a > 0]
    assert {r for _, _, r in ended_inside} == {"length", "stop"}, outcomes.seen


def test_sampled_answers_follow_the_same_draws(model, formatter) -> None:
    """With a seed, the answer is the same: each token comes from its own row's logits by the same
    sampler chain, one draw per generated token, accepted or not."""
    sampling = SamplingParams(temperature=0.8, seed=7)
    prompts = [ask(formatter, q) for q in QUESTIONS[:4]]
    reference = make_engine(model, "off")
    try:
        expected = [asyncio.run(answer(reference, p, 64, sampling)) for p in prompts]
    finally:
        reference.close()
    engine = make_engine(model, "ngram")
    try:
        assert [asyncio.run(answer(engine, p, 64, sampling)) for p in prompts] == expected
        assert engine.stats.draft_tokens_accepted_total > 0
    finally:
        engine.close()


@pytest.mark.parametrize("how", ["cancelled", "timeout"])
def test_a_speculative_answer_that_is_cancelled_or_late_frees_its_slot(model, formatter, how) -> None:
    engine = make_engine(model, "ngram", slots=1)
    sampling = SamplingParams(temperature=0.0, ignore_eos=True)

    async def scenario() -> str:
        gen = engine.submit(Job(ask(formatter, QUOTE), 900, sampling))
        try:
            async for _ in gen:
                if engine.stats.draft_tokens_accepted_total == 0:
                    continue  # until it speculates
                if how == "cancelled":
                    gen.cancel()
                elif gen.job.deadline is None or gen.job.deadline > time.monotonic():  # it passes now, once
                    gen.job.deadline = time.monotonic()
                engine.scheduler.wake()
        except DeadlineExceededError:
            pass
        assert gen.result is not None
        return gen.result.reason

    try:
        assert asyncio.run(scenario()) == how
        assert engine.scheduler.free_slots == 1
        assert engine.stats.requests_finished[how] == 1
        assert engine.stats.draft_tokens_total > 0
        again = asyncio.run(answer(engine, ask(formatter, QUOTE), 16))
    finally:
        engine.close()
    reference = make_engine(model, "off")
    try:
        assert again == asyncio.run(answer(reference, ask(formatter, QUOTE), 16))
    finally:
        reference.close()


def test_the_speculator_is_the_one_the_runner_uses(model, formatter, monkeypatch) -> None:
    threads: set[str] = set()
    decode = Context.decode

    def recorded(self, batch):  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)
        return decode(self, batch)

    monkeypatch.setattr(Context, "decode", recorded)
    engine = make_engine(model, "auto")
    try:
        spec = engine.runner.speculator
        assert isinstance(spec, Speculator) and spec.mode == "auto"
        assert asyncio.run(answer(engine, ask(formatter, QUOTE), 8))[0]
        a, b = spec.cost.line()  # measured before the first answer: decodes of 1 and 9 rows
        assert spec.cost.w > 0 and a > 0 and b > 0
    finally:
        engine.close()
    # every decode on the engine thread, the calibration's too: a decode on another thread starts a
    # second OpenMP team, and with more OpenMP threads than cores llama.cpp's barriers sleep
    assert threads == {"ozfig-engine"}


# The draft model: no second model of SmolLM2's vocabulary is at hand offline, so the test model
# drafts for itself (a draft that is always right, greedy: every proposal accepted, which the
# assertions below also check). What is tested is the machinery: the draft's own KV per
# sequence, kept in step with what the target accepted, and its proposals checked as any other.


@pytest.mark.parametrize("slots", [1, 8])
def test_draft_model_greedy_answers_are_those_of_plain_decoding(model, formatter, plain, slots) -> None:
    engine = make_engine(model, "draft", draft=model, slots=slots, draft_max=6)
    outcomes = Outcomes(engine)
    try:
        prompts = [ask(formatter, q) for q in QUESTIONS]
        if slots == 1:
            got = [asyncio.run(answer(engine, p, 96)) for p in prompts]
        else:
            got = answers(engine, prompts, 96)
        stats = engine.stats
    finally:
        engine.close()
    assert dict(zip(QUESTIONS, got, strict=True)) == plain
    assert stats.draft_tokens_accepted_total > 0.8 * stats.draft_tokens_total > 0
    assert outcomes.seen


def test_draft_model_with_stop_strings_and_max_tokens(model, formatter) -> None:
    prompt = ask(formatter, QUESTIONS[1])
    reference = make_engine(model, "off")
    try:
        expected = [asyncio.run(answer(reference, prompt, n)) for n in (7, 13, 22)]
        full, _ = asyncio.run(answer(reference, prompt, 60))
        stop = full.split()[8]
        stopped = asyncio.run(answer(reference, prompt, 60, SamplingParams(temperature=0.0, stop=(stop,))))
    finally:
        reference.close()
    engine = make_engine(model, "draft", draft=model, draft_max=8)
    try:
        assert [asyncio.run(answer(engine, prompt, n)) for n in (7, 13, 22)] == expected
        assert (
            asyncio.run(answer(engine, prompt, 60, SamplingParams(temperature=0.0, stop=(stop,)))) == stopped
        )
    finally:
        engine.close()


def test_grammar_and_logprobs_answers_are_those_of_plain_decoding(model, formatter) -> None:
    """Under a JSON-schema grammar and with logprobs asked for, proposals are checked by the same
    constrained sampler row by row: the same JSON, the same tokens, each logprob from its own row."""
    from ozfig.llama.grammar import json_schema_grammar

    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    prompt = ask(formatter, f"Answer in JSON, with the field text set to this text, word for word:\n\n{PASSAGE}")
    sampling = SamplingParams(temperature=0.0, grammar=json_schema_grammar(schema, "s"), logprobs=3)

    async def run(engine: Engine) -> tuple[str, str, list[Any]]:
        async with engine.generate(Job(prompt, 80, sampling)) as gen:
            text = await gen.text()
        assert gen.result is not None
        return text, gen.result.reason, gen.logprobs

    reference = make_engine(model, "off")
    try:
        text, reason, logprobs = asyncio.run(run(reference))
    finally:
        reference.close()
    engine = make_engine(model, "ngram")
    try:
        got_text, got_reason, got_logprobs = asyncio.run(run(engine))
        accepted = engine.stats.draft_tokens_accepted_total
    finally:
        engine.close()
    assert (got_text, got_reason) == (text, reason)
    assert text.startswith('{') and "Thames" in text
    assert accepted > 10, "the quoted passage should have been proposed and accepted"
    assert [e.token for e in got_logprobs] == [e.token for e in logprobs]
    for got, ref in zip(got_logprobs, logprobs, strict=True):
        assert got.logprob == pytest.approx(ref.logprob, abs=0.05)
        assert [t for t, _ in got.top] == [t for t, _ in ref.top]
