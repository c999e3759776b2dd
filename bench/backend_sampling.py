#!/usr/bin/env python3
"""Greedy picking in numpy against llama.cpp's backend sampling (`llama_set_sampler`), one process.

B sequences each hold a prompt of P random tokens, then decode one token per step. Blocks of
steps alternate between the two ways of picking the next token:
- `numpy`: the engine's way, argmax over each row of the logits llama.cpp copied out;
- `backend`: a greedy sampler chain attached to every sequence, so the argmax runs inside the
  decode's graph and only the token is read (`llama_get_sampled_token_ith`).
Reported, as medians over the blocks' steps (the first two of each block left out: attaching or
removing samplers makes llama.cpp reserve its graph again): the `llama_decode` time and the time
to pick the tokens after it. Backend sampling pays when the second shrinks more than the first grows.

    python bench/backend_sampling.py MODEL.gguf [--sequences 1,8,32] [--prompt 128] [--blocks 12] [--steps 12] [--ngl 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

# llama_cpp before numpy (see ozfig/cli.py)
import llama_cpp as lc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ozfig.llama.batch import Batch
from ozfig.llama.model import ContextParams, LlamaModel


def greedy_chain() -> lc.llama_sampler_p:
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
    return chain


def run(model: LlamaModel, n_seq: int, prompt: int, blocks: int, steps: int) -> dict[str, object]:
    ctx = model.new_context(
        ContextParams(
            n_ctx=(prompt + blocks * steps + 8) * n_seq, n_batch=512, n_seq=n_seq, threads=0, kv_unified=False
        )
    )
    batch = Batch(max(512, n_seq))
    chains: list[lc.llama_sampler_p] = []  # kept alive while the context may use them
    rng = np.random.default_rng(0)
    for seq in range(n_seq):
        batch.clear()
        for pos, token in enumerate(rng.integers(100, min(40000, model.n_vocab), prompt)):
            batch.add(int(token), pos, seq, pos == prompt - 1)
        assert ctx.decode(batch) == 0
    last, pos = [1] * n_seq, [prompt] * n_seq
    times: dict[str, tuple[list[float], list[float]]] = {"numpy": ([], []), "backend": ([], [])}
    for block in range(blocks):
        way = "backend" if block % 2 else "numpy"
        for seq in range(n_seq):
            if way == "backend":  # a chain can be attached once: a new one each time
                chains.append(greedy_chain())
                assert lc.llama_set_sampler(ctx.ptr, seq, chains[-1])
            else:
                lc.llama_set_sampler(ctx.ptr, seq, None)
        for step in range(steps):
            batch.clear()
            for seq in range(n_seq):
                batch.add(last[seq], pos[seq], seq, True)
                pos[seq] += 1
            started = time.perf_counter()
            assert ctx.decode(batch) == 0
            decoded = time.perf_counter()
            if way == "backend":
                last = [lc.llama_get_sampled_token_ith(ctx.ptr, row) for row in range(n_seq)]
            else:
                last = [int(ctx.logits(row).argmax()) for row in range(n_seq)]
            if step >= 2:
                times[way][0].append(decoded - started)
                times[way][1].append(time.perf_counter() - decoded)
    for seq in range(n_seq):
        lc.llama_set_sampler(ctx.ptr, seq, None)
    ctx.close()
    batch.close()
    for chain in chains:
        lc.llama_sampler_free(chain)
    out: dict[str, object] = {"sequences": n_seq}
    for way, (decode, pick) in times.items():
        out[f"{way}_decode_ms"] = round(statistics.median(decode) * 1e3, 3)
        out[f"{way}_pick_us"] = round(statistics.median(pick) * 1e6, 1)
    step_numpy = statistics.median(a + b for a, b in zip(*times["numpy"], strict=True))
    step_backend = statistics.median(a + b for a, b in zip(*times["backend"], strict=True))
    out["step_backend_over_numpy"] = round(step_backend / step_numpy, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--sequences", default="1,8,32")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--ngl", type=int, default=0)
    args = ap.parse_args()
    model = LlamaModel(args.model, gpu_layers=args.ngl)
    for n_seq in (int(n) for n in args.sequences.split(",")):
        print(json.dumps(run(model, n_seq, args.prompt, args.blocks, args.steps)), flush=True)


if __name__ == "__main__":
    main()
