"""Conversations stop paying for their history: token-level reuse (answers included), copies of
busy sequences, the RAM prompt cache, its folder across restarts, and `exact` mode."""

import asyncio
import logging
from pathlib import Path

from ozfig.engine.cache_files import SUFFIX
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Finished, Job
from ozfig.engine.sampling import SamplingParams
from tests.ozfig.test_engine_soak import anon_rss_kib

GREEDY = SamplingParams(temperature=0.0)
SYSTEM = {"role": "system", "content": "You are a helpful assistant. " * 8}


def make_engine(model, **kw) -> Engine:
    cfg = dict(slots=1, ctx=1024, batch=512, threads=2, max_waiting=8, request_timeout=900.0)
    cfg.update(kw)
    return Engine(model, EngineConfig(**cfg))


async def answer(engine: Engine, prompt: list[int], max_tokens: int = 24) -> tuple[str, Finished]:
    async with engine.generate(Job(prompt, max_tokens, GREEDY)) as gen:
        text = await gen.text()
    assert gen.result is not None
    return text, gen.result


def chat(formatter, engine: Engine, turns: list[str], max_tokens: int = 24, system=SYSTEM) -> list[Finished]:
    """A conversation, turn by turn, each turn resending the whole history as a chat client does."""
    messages: list[dict[str, str]] = [system]
    results = []
    for question in turns:
        messages.append({"role": "user", "content": question})
        text, result = asyncio.run(answer(engine, formatter.tokens(messages), max_tokens))
        messages.append({"role": "assistant", "content": text})
        results.append(result)
    return results


def test_a_second_turn_reuses_the_first_turns_prompt_and_answer(model, formatter) -> None:
    engine = make_engine(model)  # defaults: --prompt-cache on, --batch 512
    try:
        first, second = chat(formatter, engine, ["What is a cat?", "And what is a dog?"])
    finally:
        engine.close()
    assert first.cached_tokens == 0
    # the whole first prompt and most of the answer (the last generated token is never fed)
    assert second.cached_tokens >= first.prompt_tokens + first.completion_tokens // 2
    assert second.cached_tokens < second.prompt_tokens
    assert engine.stats.prompt_tokens_reused_total == second.cached_tokens


def test_exact_mode_answers_as_a_fresh_run(model, formatter) -> None:
    turns = ["Name three colours.", "Name three more."]
    fresh_engine = make_engine(model, prompt_cache="off")
    exact_engine = make_engine(model, prompt_cache="exact", batch=16)
    try:
        history = chat(formatter, exact_engine, turns)
        messages = [SYSTEM, {"role": "user", "content": turns[0]}]
        first_text, _ = asyncio.run(answer(exact_engine, formatter.tokens(messages)))
        messages += [{"role": "assistant", "content": first_text}, {"role": "user", "content": turns[1]}]
        prompt = formatter.tokens(messages)
        reused_text, reused = asyncio.run(answer(exact_engine, prompt))
        fresh_text, fresh = asyncio.run(answer(fresh_engine, prompt))
    finally:
        fresh_engine.close()
        exact_engine.close()
    assert history[1].cached_tokens > 0 and history[1].cached_tokens % 16 == 0
    assert reused.cached_tokens > 0 and fresh.cached_tokens == 0
    assert reused_text == fresh_text


def test_an_evicted_conversation_is_restored_from_ram(model, formatter) -> None:
    engine = make_engine(model, cache_ram_mib=64)
    try:
        a1 = chat(formatter, engine, ["Tell me about the moon."])[0]
        other = {"role": "system", "content": "Answer briefly."}
        chat(formatter, engine, ["Write about the sea."], system=other)  # the one slot: another conversation
        assert engine.stats.prompt_cache_saved_total == 1
        a = chat(formatter, engine, ["Tell me about the moon.", "How far is it?"])
    finally:
        engine.close()
    assert a[0].cached_tokens == a1.prompt_tokens - 1  # the repeated first turn: all but its last token
    assert a[1].cached_tokens >= a1.prompt_tokens
    assert engine.stats.prompt_cache_restored_tokens_total >= a1.prompt_tokens - 1
    assert 0 < engine.stats.prompt_cache_bytes <= 64 * 1024 * 1024


def test_a_busy_sequence_is_copied_not_computed_again(model, formatter) -> None:
    engine = make_engine(model, slots=2)
    long_doc = {"role": "user", "content": "Summarise this: " + "the quick brown fox jumps over the lazy dog. " * 30}
    prompt = formatter.tokens([SYSTEM, long_doc])

    async def scenario() -> Finished:
        async with engine.generate(Job(prompt, 200, SamplingParams(temperature=0.0, ignore_eos=True))) as busy:
            async for _ in busy:  # the first answer is running: its sequence is busy
                break
            _, second = await answer(engine, prompt, 4)
            busy.cancel()
        return second

    try:
        second = asyncio.run(scenario())
    finally:
        engine.close()
    assert second.cached_tokens == len(prompt) - 1


def test_the_ram_cache_never_exceeds_its_budget(model, formatter) -> None:
    engine = make_engine(model, cache_ram_mib=8)  # this model's KV: 22.5 KiB a token, ~360 tokens in all
    try:
        for i in range(12):
            question = f"Question number {i}: " + f"what is {i} plus {i}, and {i} times {i}? " * 4
            chat(formatter, engine, [question], max_tokens=8)
            assert engine.stats.prompt_cache_bytes <= 8 * 1024 * 1024
        ram = engine.runner.ram
        assert ram.bytes_held == engine.stats.prompt_cache_bytes == sum(e.size for e in ram.entries.values())
        assert engine.stats.prompt_cache_saved_total == 11  # every conversation but the last was saved
        assert 1 < len(ram.entries) < 11  # and the oldest evicted to stay within the budget
    finally:
        engine.close()


def test_the_cache_folder_survives_a_restart_and_damaged_files_are_skipped(model, formatter, tmp_path, caplog) -> None:
    folder = tmp_path / "kv"
    engine = make_engine(model, cache_ram_mib=64, cache_dir=str(folder))
    try:
        first = chat(formatter, engine, ["Tell me about the moon."])[0]
    finally:
        engine.close()  # as a drain ends: the live sequence goes to RAM, then to the folder
    files = sorted(folder.glob(f"*{SUFFIX}"))
    assert len(files) == 1
    (folder / f"junk{SUFFIX}").write_bytes(b"not a cache file at all")
    truncated = folder / f"cut{SUFFIX}"
    truncated.write_bytes(files[0].read_bytes()[:-100])
    caplog.set_level(logging.WARNING, logger="ozfig.engine.cache_files")
    engine = make_engine(model, cache_ram_mib=64, cache_dir=str(folder))
    try:
        again = chat(formatter, engine, ["Tell me about the moon.", "How far is it?"])
    finally:
        engine.close()
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and all(Path(str(p)).name in " ".join(skipped) for p in ("junk.ozkv", "cut.ozkv"))
    assert again[0].cached_tokens == first.prompt_tokens - 1
    assert again[1].cached_tokens >= first.prompt_tokens


def test_a_200_turn_soak_stays_within_the_ram_budget(model, formatter) -> None:
    """Memory, not bookkeeping: the process's anonymous RSS grows by at most the budget plus a margin."""
    budget_mib = 8
    engine = make_engine(model, cache_ram_mib=budget_mib, ctx=256)

    async def soak(turns: int, offset: int) -> None:
        for i in range(offset, offset + turns):  # a new conversation every turn: each pushes the last out
            text = f"Conversation {i}: " + " ".join(f"word{(i * 7 + k) % 101}" for k in range(24))
            await answer(engine, formatter.tokens([{"role": "user", "content": text}]), 2)

    try:
        asyncio.run(soak(20, 0))  # warm-up: the allocator's pools and the cache reach their size
        before = anon_rss_kib()
        asyncio.run(soak(200, 20))
        after = anon_rss_kib()
        assert engine.stats.prompt_cache_saved_total >= 200
        assert engine.stats.prompt_cache_bytes <= budget_mib * 1024 * 1024
    finally:
        engine.close()
    assert after - before < 8 * 1024, f"anonymous memory grew by {after - before} KiB over 200 turns"
