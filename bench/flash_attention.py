#!/usr/bin/env python3
"""llama.cpp's flash attention on and off, on this machine: prompt time and decode time per token.

For each prompt length P: a context with flash attention on and one with it off (otherwise as the
engine makes them: one sequence, its own KV stream, --threads), P random tokens decoded in chunks
of 512 (timed: the prompt), then `--decode` one-row steps fed their own argmax (median of all but
the first quarter: the decode). Contexts alternate on/off, `--repeat` times. Why it matters:
`--flash-attention auto` is off on the CPU, where llama.cpp would turn it on.

    python bench/flash_attention.py MODEL.gguf [--prompts 512,1500] [--decode 48] [--repeat 2] [--ngl 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import llama_cpp  # noqa: F401  (before numpy, as ozfig/cli.py)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ozfig.llama.batch import Batch
from ozfig.llama.model import ContextParams, LlamaModel


def run(model: LlamaModel, prompt: list[int], flash: bool, steps: int, threads: int) -> tuple[float, float]:
    """(prompt seconds, median decode seconds per token) for one fresh context."""
    n = len(prompt)
    params = ContextParams(
        n_ctx=n + steps + 8, n_batch=512, n_seq=1, threads=threads, flash_attention=flash, kv_unified=False
    )
    with model.new_context(params) as ctx, Batch(512) as batch:
        started = time.perf_counter()
        for c in range(0, n, 512):
            batch.clear()
            for i in range(c, min(n, c + 512)):
                batch.add(prompt[i], i, 0, i == n - 1)
            assert ctx.decode(batch) == 0
        prompt_s = time.perf_counter() - started
        token = int(np.argmax(ctx.logits(batch.n_tokens - 1)))
        times = []
        for s in range(steps):
            batch.clear()
            batch.add(token, n + s, 0, True)
            t0 = time.perf_counter()
            assert ctx.decode(batch) == 0
            times.append(time.perf_counter() - t0)
            token = int(np.argmax(ctx.logits(0)))
    return prompt_s, statistics.median(times[steps // 4 :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--prompts", default="512,1500")
    ap.add_argument("--decode", type=int, default=48)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ngl", type=int, default=0)
    args = ap.parse_args()
    model = LlamaModel(args.model, gpu_layers=args.ngl)
    rng = np.random.default_rng(1)
    for length in [int(p) for p in args.prompts.split(",")]:
        prompt = [int(t) for t in rng.integers(300, model.n_vocab, size=length)]
        found: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for _ in range(args.repeat):
            for flash in (True, False):
                found[flash].append(run(model, prompt, flash, args.decode, args.threads))
        on_p, on_d = (statistics.median(x) for x in zip(*found[True], strict=True))
        off_p, off_d = (statistics.median(x) for x in zip(*found[False], strict=True))
        print(
            json.dumps(
                {
                    "prompt_tokens": length,
                    "prompt_s_on": round(on_p, 2),
                    "prompt_s_off": round(off_p, 2),
                    "decode_ms_on": round(on_d * 1000, 2),
                    "decode_ms_off": round(off_d * 1000, 2),
                    "decode_speedup_off": round(on_d / off_d, 3),
                    "prompt_slowdown_off": round(off_p / on_p, 3),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
