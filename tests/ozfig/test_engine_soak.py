"""Many requests with random cancellations leave no busy slot, no KV cell and no memory behind."""

import asyncio
import random

import pytest

from ozfig.chat_format import ChatFormatter
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.llama.model import LlamaModel


def anon_rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status")


async def traffic(engine: Engine, prompts: list[list[int]], count: int, rng: random.Random) -> dict[str, int]:
    seen: dict[str, int] = {}

    async def one(i: int) -> None:
        sampling = SamplingParams(temperature=rng.choice([0.0, 0.8]), seed=i)
        request = Job(prompts[i % len(prompts)], rng.randint(1, 6), sampling)
        action = rng.random()
        async with engine.generate(request) as gen:
            if action < 0.2:
                return  # cancelled before it started (or while waiting)
            async for _ in gen:
                if action < 0.4:
                    return  # cancelled mid-answer
        seen[gen.result.reason] = seen.get(gen.result.reason, 0) + 1

    pending: set[asyncio.Task[None]] = set()
    for i in range(count):
        pending.add(asyncio.ensure_future(one(i)))
        if len(pending) >= 12:
            _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*pending)
    return seen


@pytest.mark.slow
def test_random_cancellations_leave_nothing_behind(model_path) -> None:
    model = LlamaModel(str(model_path))
    fmt = ChatFormatter(model)
    prompts = [
        fmt.tokens([{"role": "user", "content": f"Say something about {w}."}])
        for w in ("cats", "rain", "maps")
    ]
    engine = Engine(model, EngineConfig(slots=4, ctx=128, batch=64, threads=2, max_waiting=64))
    rng = random.Random(7)
    try:
        asyncio.run(traffic(engine, prompts, 40, rng))  # warm-up: allocator pools reach their size
        before = anon_rss_kib()
        seen = asyncio.run(traffic(engine, prompts, 160, rng))
        after = anon_rss_kib()
        stats = engine.stats
        assert engine.scheduler.free_slots == 4
        assert stats.busy_slots == 0 and stats.queue_depth == 0
        ctx = engine.runner.ctx
        # the KV cells left are exactly the prefixes kept for reuse, nothing else
        for s in range(4):
            kept = engine.runner.cache.tokens[s]
            assert ctx.seq_pos_max(s) == len(kept) - 1
            assert ctx.seq_pos_min(s) == (0 if kept else -1)
        assert stats.requests_finished["cancelled"] > 15
        assert seen.get("length", 0) + seen.get("stop", 0) > 60
        assert after - before < 8 * 1024, f"anonymous memory grew by {after - before} KiB"
    finally:
        engine.close()
        model.close()
