#!/usr/bin/env python3
"""ozfig's engine against llama.cpp's own decode loop, in one process, side by side.

The ceiling is `bench_decode.py` from the shared GPU recipe (llama.cpp's low-level API,
random prompt tokens, argmax in numpy): prompt and decode speed for B sequences together.
ozfig's `Engine` gets the same work: B requests of the same prompt length submitted at
once, greedy, `ignore_eos` so every answer has exactly STEPS tokens. Runs alternate
(baseline, engine, baseline, engine, ...) and the medians are compared.

    python bench/engine_bench.py MODEL.gguf --batches 1,8 --prompt 512 --steps 128 [--ngl 99] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

# llama_cpp before numpy (see ozfig/cli.py)
import llama_cpp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.llama.backend import cpu_has_amx
from ozfig.llama.model import LlamaModel


def load_baseline(path: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_decode", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if cpu_has_amx():
        # llama.cpp's AMX weight buffers crash on these CPUs (ozfig.llama.model loads without
        # them): the baseline loads the same way, or it segfaults and nothing is compared
        default_params = llama_cpp.llama_model_default_params

        def without_extra_buffers():  # type: ignore[no-untyped-def]
            params = default_params()
            params.use_extra_bufts = False
            return params

        mod.lc.llama_model_default_params = without_extra_buffers
    return mod


async def engine_run(engine: Engine, n_vocab: int, B: int, prompt: int, steps: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    prompts = [[int(t) for t in rng.integers(300, n_vocab, size=prompt)] for _ in range(B)]
    sampling = SamplingParams(temperature=0.0, ignore_eos=True)

    async def one(tokens: list[int]) -> float:
        async with engine.generate(Job(tokens, steps, sampling)) as gen:
            async for _ in gen:
                pass
        assert gen.result is not None and gen.result.completion_tokens == steps, gen.result
        assert gen.result.time_to_first_token is not None
        return gen.result.time_to_first_token

    start = time.perf_counter()
    ttft = await asyncio.gather(*(one(p) for p in prompts))
    end = time.perf_counter()
    first_token = start + min(ttft)
    return {
        "sequences": B,
        "end_to_end_tokens_per_s": round(B * steps / (end - start), 1),
        # from the first generated token to the end: the decode phase (B=1: pure decode)
        "decode_tokens_per_s": round(B * (steps - 1) / (end - first_token), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--ngl", type=int, default=0)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--flash", action="store_true")
    ap.add_argument(
        "--baseline", default=str(Path(__file__).resolve().parents[2] / "shared" / "gpu" / "bench_decode.py")
    )
    args = ap.parse_args()
    threads = args.threads or os.cpu_count() or 1
    base = load_baseline(args.baseline)
    base_model = base.load(args.model, args.ngl)
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(base_model))
    ours = LlamaModel(args.model, gpu_layers=args.ngl)
    rows = []
    for B in [int(b) for b in args.batches.split(",")]:
        engine = Engine(
            ours, EngineConfig(slots=B, ctx=args.prompt + args.steps + 8, batch=512, threads=threads)
        )
        base.run(base_model, n_vocab, B, min(args.prompt, 64), 8, threads, args.flash)  # warm-up
        asyncio.run(engine_run(engine, n_vocab, B, min(args.prompt, 64), 8))
        b_runs, e_runs = [], []
        for _ in range(args.repeat):
            b_runs.append(base.run(base_model, n_vocab, B, args.prompt, args.steps, threads, args.flash))
            e_runs.append(asyncio.run(engine_run(engine, n_vocab, B, args.prompt, args.steps)))
        engine.close()
        row = {"sequences": B}
        for key in ("decode_tokens_per_s", "end_to_end_tokens_per_s"):
            b = statistics.median(r[key] for r in b_runs)
            e = statistics.median(r[key] for r in e_runs)
            row[f"llama.cpp_{key}"] = b
            row[f"ozfig_{key}"] = e
            row[f"ratio_{key}"] = round(e / b, 3)
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
