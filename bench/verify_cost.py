#!/usr/bin/env python3
"""What verifying k proposed tokens costs: one `llama_decode` of B sequences with 1 + k rows each
(logits for every row, as speculation asks), against the same decode with one row each.

Each sequence first holds a prompt of P random tokens; every timed decode is undone
(`seq_remove`) so all of them see the same KV length. The k values are interleaved over the
repeats and the medians reported, with each k's cost relative to k = 0. With `--proposing N` only
the first N sequences get the k extra rows (one answer proposing among several plain ones).

    python bench/verify_cost.py MODEL.gguf [--sequences 1,8] [--max-k 16] [--prompt 512] [--repeat 7] [--ngl 0] [--proposing N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ozfig.llama.batch import Batch
from ozfig.llama.model import ContextParams, LlamaModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the GGUF file to time")
    ap.add_argument("--sequences", default="1,8", help="sequences per decode, comma-separated (one run each)")
    ap.add_argument("--max-k", type=int, default=16, help="the most extra rows per sequence (k = 0 ... max)")
    ap.add_argument("--prompt", type=int, default=512, help="tokens each sequence holds first")
    ap.add_argument("--repeat", type=int, default=7, help="timings of each k (medians) after a warm-up")
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: every core)")
    ap.add_argument("--ngl", type=int, default=0, help="layers on the GPU (99: all)")
    ap.add_argument("--proposing", type=int, default=0, help="sequences with the k extra rows (0: all)")
    args = ap.parse_args()
    model = LlamaModel(args.model, gpu_layers=args.ngl)
    rng = random.Random(1)
    threads = args.threads or os.cpu_count() or 1
    for n_seq in [int(b) for b in args.sequences.split(",")]:
        n_ctx = args.prompt + args.max_k + 8
        rows = max(args.prompt, n_seq * (args.max_k + 1))
        params = ContextParams(n_ctx=n_ctx * n_seq, n_batch=rows, n_seq=n_seq, threads=threads, kv_unified=False)
        with model.new_context(params) as ctx, Batch(rows) as batch:
            for seq in range(n_seq):
                batch.clear()
                for pos in range(args.prompt):
                    batch.add(rng.randrange(300, model.n_vocab), pos, seq, pos == args.prompt - 1)
                assert ctx.decode(batch) == 0
            times: dict[int, list[float]] = {k: [] for k in range(args.max_k + 1)}
            for _ in range(args.repeat + 1):  # the first round warms up
                order = list(times)
                rng.shuffle(order)
                for k in order:
                    batch.clear()
                    for seq in range(n_seq):
                        extra = k if not args.proposing or seq < args.proposing else 0
                        for j in range(extra + 1):
                            batch.add(rng.randrange(300, model.n_vocab), args.prompt + j, seq, True)
                    start = time.perf_counter()
                    assert ctx.decode(batch) == 0
                    times[k].append(time.perf_counter() - start)
                    for seq in range(n_seq):
                        ctx.seq_remove(seq, args.prompt, -1)
            base = statistics.median(times[0][1:])
            for k, ts in times.items():
                ms = statistics.median(ts[1:])
                row = {"sequences": n_seq, "proposing": args.proposing or n_seq, "k": k, "decode_ms": round(ms * 1000, 2), "relative": round(ms / base, 3)}
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
