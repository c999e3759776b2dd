#!/usr/bin/env python3
"""ozfig's engine against llama.cpp's own decode loop, side by side.

The ceiling is `bench_decode.py` from the shared GPU recipe (llama.cpp's low-level API,
random prompt tokens, argmax in numpy): prompt and decode speed for B sequences together.
ozfig's `Engine` gets the same work: B requests of the same prompt length submitted at
once, greedy, `ignore_eos` so every answer has exactly STEPS tokens. Runs alternate
(baseline, engine, baseline, engine, ...) and the medians are compared. The baseline runs in a
child process: two decode loops in one process make two OpenMP teams, which throttle each other.

It also gives the engine's time per step outside `llama_decode` (`overhead_ms_per_step`): the
run's wall time less the time spent in `llama_decode` calls (timed around the binding's call),
over the number of calls; beside it the baseline loop's own (`llama.cpp_overhead_ms_per_step`: its
decode phase less its `llama_decode` calls, per step), the floor of a Python loop that only fills
the batch and argmaxes the logits. `--code DIR` runs the engine of another checkout (e.g. an older commit
unpacked with `git archive`), for before/after figures in one run of the same script.

    python bench/engine_bench.py MODEL.gguf --batches 1,8 --prompt 512 --steps 128 [--ngl 99] [--repeat 3]
        [--speculative off|auto|ngram] [--no-baseline] [--code DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import importlib.util
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

# llama_cpp before numpy (see ozfig/cli.py)
import llama_cpp
import numpy as np

CODE = (
    sys.argv[sys.argv.index("--code") + 1]
    if "--code" in sys.argv
    else str(Path(__file__).resolve().parent.parent)
)
sys.path.insert(0, CODE)

from ozfig.engine.engine import Engine, EngineConfig  # noqa: E402
from ozfig.engine.sampling import SamplingParams  # noqa: E402
from ozfig.llama.backend import cpu_has_amx  # noqa: E402
from ozfig.llama.model import LlamaModel  # noqa: E402

try:  # the engine's job since issue 20; a GenerationRequest before
    from ozfig.engine.engine import GenerationRequest as _Request  # type: ignore[attr-defined]
except ImportError:
    from ozfig.engine.jobs import Job as _Request


class DecodeClock:
    """Every `llama_decode` call of this process, timed (the engine's, through its binding)."""

    def __init__(self) -> None:
        self.durations: list[float] = []  # seconds, one per call since the last reset
        self._decode = llama_cpp.llama_decode

    @property
    def calls(self) -> int:
        return len(self.durations)

    @property
    def seconds(self) -> float:
        return sum(self.durations)

    def install(self) -> None:
        decode, durations = self._decode, self.durations

        def timed(ctx, batch):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return decode(ctx, batch)
            finally:
                durations.append(time.perf_counter() - start)

        llama_cpp.llama_decode = timed

    def reset(self) -> None:
        self.durations.clear()


CLOCK = DecodeClock()


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


# The baseline runs in a process of its own: llama.cpp's loop on this process's main thread and
# the engine on its thread would make two OpenMP teams, and with more OpenMP threads than cores
# llama.cpp's barriers sleep (both sides throttled on a CPU).
_BASELINE: dict[str, object] = {}


def _baseline_start(path: str, model: str, ngl: int) -> None:
    mod = load_baseline(path)
    CLOCK.install()  # bench_decode calls llama_cpp.llama_decode: the same module, in this child
    _BASELINE.update(mod=mod, model=mod.load(model, ngl))


def _baseline_run(*args: object) -> dict[str, float]:
    """bench_decode's run, with its loop's time per decode step outside `llama_decode` (the
    batch filled through ctypes, every row's logits read and argmaxed in numpy): the floor any
    Python loop around llama.cpp pays on this machine."""
    CLOCK.reset()
    result: dict[str, float] = _BASELINE["mod"].run(_BASELINE["model"], *args)  # type: ignore[attr-defined]
    steps = int(args[3])  # type: ignore[call-overload]
    decoding = sum(CLOCK.durations[-steps:]) / steps  # its decode phase: the last `steps` calls
    result["overhead_ms_per_step"] = round(result["decode_ms_per_step"] - decoding * 1000, 3)
    return result


async def engine_run(engine: Engine, n_vocab: int, B: int, prompt: int, steps: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    prompts = [[int(t) for t in rng.integers(300, n_vocab, size=prompt)] for _ in range(B)]
    sampling = SamplingParams(temperature=0.0, ignore_eos=True)

    async def one(tokens: list[int]) -> float:
        async with engine.generate(_Request(tokens, steps, sampling)) as gen:
            async for _ in gen:
                pass
        assert gen.result is not None and gen.result.completion_tokens == steps, gen.result
        assert gen.result.time_to_first_token is not None
        return gen.result.time_to_first_token

    CLOCK.reset()
    stats = engine.stats
    steps0 = getattr(stats, "steps_total", 0)
    inside0 = getattr(stats, "step_overhead_seconds_total", 0.0)
    start = time.monotonic()
    ttft = await asyncio.gather(*(one(p) for p in prompts))
    end = time.monotonic()
    first_token = start + min(ttft)
    return {
        "sequences": B,
        "end_to_end_tokens_per_s": round(B * steps / (end - start), 1),
        # from the first generated token to the end: the decode phase (B=1: pure decode)
        "decode_tokens_per_s": round(B * (steps - 1) / (end - first_token), 1),
        "overhead_ms_per_step": round((end - start - CLOCK.seconds) / max(CLOCK.calls, 1) * 1000, 3),
        # the engine's own count (since issue 18): the runner's steps only, less llama_decode
        "step_overhead_ms": round(
            (getattr(stats, "step_overhead_seconds_total", 0.0) - inside0)
            / max(getattr(stats, "steps_total", 0) - steps0, 1)
            * 1000,
            3,
        ),
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
        "--speculative", default="off", help="the engine's --speculative (this checkout's engine)"
    )
    ap.add_argument("--no-baseline", action="store_true", help="the engine alone (for its per-step overhead)")
    ap.add_argument("--code", default=CODE, help="the checkout whose engine runs (default: this one)")
    ap.add_argument(
        "--baseline", default=str(Path(__file__).resolve().parents[2] / "shared" / "gpu" / "bench_decode.py")
    )
    args = ap.parse_args()
    threads = args.threads or os.cpu_count() or 1
    base = None
    if not args.no_baseline:
        base = concurrent.futures.ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_baseline_start,
            initargs=(args.baseline, args.model, args.ngl),
        )
    ours = LlamaModel(args.model, gpu_layers=args.ngl)
    n_vocab = ours.n_vocab
    CLOCK.install()
    extra: dict[str, str] = {} if args.speculative == "off" else {"speculative": args.speculative}
    if "flash_attention" in {f.name for f in dataclasses.fields(EngineConfig)}:
        # as the baseline's context (`--flash`; off without it): the two decode the same kernels
        extra["flash_attention"] = "on" if args.flash else "off"
    for B in [int(b) for b in args.batches.split(",")]:
        config = EngineConfig(slots=B, ctx=args.prompt + args.steps + 8, batch=512, threads=threads, **extra)
        engine = Engine(ours, config)
        if base is not None:
            base.submit(_baseline_run, n_vocab, B, min(args.prompt, 64), 8, threads, args.flash).result()  # warm-up
        asyncio.run(engine_run(engine, n_vocab, B, min(args.prompt, 64), 8))
        b_runs, e_runs = [], []
        for _ in range(args.repeat):
            if base is not None:
                b_runs.append(
                    base.submit(_baseline_run, n_vocab, B, args.prompt, args.steps, threads, args.flash).result()
                )
            e_runs.append(asyncio.run(engine_run(engine, n_vocab, B, args.prompt, args.steps)))
        engine.close()
        row: dict[str, object] = {"sequences": B, "code": args.code, "speculative": args.speculative}
        row["ozfig_overhead_ms_per_step"] = statistics.median(r["overhead_ms_per_step"] for r in e_runs)
        row["ozfig_runner_step_overhead_ms"] = statistics.median(r["step_overhead_ms"] for r in e_runs)
        if b_runs:
            row["llama.cpp_overhead_ms_per_step"] = statistics.median(r["overhead_ms_per_step"] for r in b_runs)
        for key in ("decode_tokens_per_s", "end_to_end_tokens_per_s"):
            e = statistics.median(r[key] for r in e_runs)
            row[f"ozfig_{key}"] = e
            if b_runs:
                b = statistics.median(r[key] for r in b_runs)
                row[f"llama.cpp_{key}"] = b
                row[f"ratio_{key}"] = round(e / b, 3)
        print(json.dumps(row), flush=True)
    if base is not None:
        base.shutdown()


if __name__ == "__main__":
    main()
