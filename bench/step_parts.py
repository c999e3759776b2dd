#!/usr/bin/env python3
"""Where the engine thread's time between two `llama_decode` calls goes, in-process.

Runs B greedy answers (random prompt tokens, `ignore_eos`) through an `Engine` with speculation
off, twice (the first warms up), and times, per step of the second run: the runner's `step`
less its `llama_decode` calls (batch, sampling, text, stops), its `flush` (the hand-over of the
step's events to the event loop: one pipe write that wakes the loop), and the scheduler's turn
between a flush and the next step (admitting, cancellations, the lock). With `--consume busy`
the consumer also does some Python per token, as an HTTP stream would.

    python bench/step_parts.py MODEL.gguf --sequences 1,8 [--prompt 64] [--steps 128] [--flash-attention off] [--ngl 99]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

# llama_cpp before numpy (see ozfig/cli.py)
import llama_cpp  # noqa: F401
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine_bench import DecodeClock
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.llama.model import LlamaModel


def measure(
    model: LlamaModel, clock: DecodeClock, sequences: int, prompt: int, steps: int, flash: str, busy: bool
) -> dict[str, float]:
    engine = Engine(
        model,
        EngineConfig(slots=sequences, ctx=prompt + steps + 8, batch=512, threads=0, flash_attention=flash, speculative="off"),  # type: ignore[arg-type]
    )
    runner = engine.runner
    step_s: list[float] = []
    flush_s: list[float] = []
    gaps: list[float] = []
    last_flush: list[float | None] = [None]
    step, flush = runner.step, runner.flush

    def timed_step() -> None:
        start = time.perf_counter()
        if last_flush[0] is not None:
            gaps.append(start - last_flush[0])
        step()
        step_s.append(time.perf_counter() - start)

    def timed_flush() -> None:
        start = time.perf_counter()
        flush()
        end = time.perf_counter()
        flush_s.append(end - start)
        last_flush[0] = end

    runner.step, runner.flush = timed_step, timed_flush  # type: ignore[method-assign]

    async def answers() -> None:
        rng = np.random.default_rng(1)
        sampling = SamplingParams(temperature=0.0, ignore_eos=True)

        async def one() -> None:
            tokens = [int(t) for t in rng.integers(300, model.n_vocab, size=prompt)]
            async with engine.generate(Job(tokens, steps, sampling)) as gen:
                async for _ in gen:
                    if busy:
                        sum(range(2000))

        await asyncio.gather(*(one() for _ in range(sequences)))

    try:
        asyncio.run(answers())  # warm-up
        for timings in (step_s, flush_s, gaps):
            timings.clear()
        clock.reset()
        last_flush[0] = None
        asyncio.run(answers())
    finally:
        engine.close()
    decodes = clock.durations
    n = len(step_s)
    return {
        "sequences": sequences,
        "steps": n,
        "decode_ms_median": round(statistics.median(decodes) * 1e3, 2),
        "step_less_decode_ms": round((sum(step_s) - sum(decodes)) / n * 1e3, 3),
        "flush_us_median": round(statistics.median(flush_s) * 1e6, 1),
        "scheduler_turn_us_median": round(statistics.median(gaps) * 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--sequences", default="1,8")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--flash-attention", default="off", choices=["auto", "on", "off"])
    ap.add_argument("--consume", default="idle", choices=["idle", "busy"])
    ap.add_argument("--ngl", type=int, default=0, help="layers on the GPU (99 = all)")
    args = ap.parse_args()
    model = LlamaModel(args.model, gpu_layers=args.ngl)
    clock = DecodeClock()
    clock.install()  # every llama_decode of the engine thread, timed
    for b in (int(s) for s in args.sequences.split(",")):
        row = measure(model, clock, b, args.prompt, args.steps, args.flash_attention, args.consume == "busy")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
