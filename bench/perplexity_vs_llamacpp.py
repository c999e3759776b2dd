#!/usr/bin/env python3
"""`ozfig eval perplexity` beside llama.cpp's own `llama-perplexity`, on the same model and text.

Runs both for each --ctx, parses llama-perplexity's `Final estimate: PPL = x +/- y` and
ozfig's JSON, and prints a Markdown table with the relative difference (goal: under 0.1%).

    python bench/perplexity_vs_llamacpp.py --model M.gguf --file text.txt --ctx 128,256,512 \\
        --llama-perplexity ~/.cache/ozfig-llama.cpp/build/bin/llama-perplexity
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_BINARY = Path.home() / ".cache/ozfig-llama.cpp/build/bin/llama-perplexity"
FINAL = re.compile(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)")
CHUNKS = re.compile(r"calculating perplexity over (\d+) chunks")


def run_llama(binary: str, model: str, text: str, ctx: int, batch: int, threads: int, ngl: int) -> dict:
    cmd = [binary, "-m", model, "-f", text, "-c", str(ctx), "-b", str(batch), "-t", str(threads)]
    cmd += ["-ngl", str(ngl)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    log = proc.stdout + proc.stderr
    final = FINAL.search(log)
    if proc.returncode != 0 or final is None:
        sys.exit(f"llama-perplexity failed ({proc.returncode}):\n{log[-3000:]}")
    chunks = CHUNKS.search(log)
    return {
        "ppl": float(final.group(1)),
        "error": float(final.group(2)),
        "chunks": int(chunks.group(1)) if chunks else None,
        "seconds": seconds,
    }


def run_ozfig(model: str, text: str, ctx: int, batch: int, threads: int, ngl: int) -> dict:
    cmd = [sys.executable, "-m", "ozfig", "eval", "perplexity", "--model", model, "--file", text]
    cmd += ["--ctx", str(ctx), "--batch", str(batch), "--threads", str(threads), "--gpu-layers", str(ngl)]
    cmd += ["--json", "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"ozfig eval perplexity failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout)
    return {"ppl": data["ppl"], "error": data["ppl_error"], "chunks": data["chunks"], "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--ctx", default="128,256,512", help="comma-separated context sizes")
    ap.add_argument("--batch", type=int, default=2048, help="-b of both tools")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--ngl", type=int, default=0, help="layers on the GPU, for both tools")
    ap.add_argument("--llama-perplexity", default=str(DEFAULT_BINARY))
    args = ap.parse_args()

    print(
        f"model `{Path(args.model).name}`, text `{args.file}` ({Path(args.file).stat().st_size} bytes), ",
        end="",
    )
    print(
        f"batch {args.batch}, {args.threads} threads, ngl {args.ngl}, {platform.machine()} {os.cpu_count()} cores"
    )
    print()
    print("| ctx | chunks | llama-perplexity | ozfig eval perplexity | rel. diff | time llama.cpp / ozfig |")
    print("|----:|-------:|-----------------:|----------------------:|----------:|-----------------------:|")
    worst = 0.0
    for ctx in [int(c) for c in args.ctx.split(",")]:
        ref = run_llama(args.llama_perplexity, args.model, args.file, ctx, args.batch, args.threads, args.ngl)
        ours = run_ozfig(args.model, args.file, ctx, args.batch, args.threads, args.ngl)
        diff = abs(ours["ppl"] - ref["ppl"]) / ref["ppl"]
        worst = max(worst, diff)
        print(
            f"| {ctx} | {ours['chunks']} | {ref['ppl']:.4f} +/- {ref['error']:.5f} "
            f"| {ours['ppl']:.4f} +/- {ours['error']:.5f} | {100 * diff:.4f}% "
            f"| {ref['seconds']:.1f} s / {ours['seconds']:.1f} s |",
            flush=True,
        )
    print()
    print(f"largest relative difference: {100 * worst:.4f}% ({'within' if worst <= 1e-3 else 'OVER'} 0.1%)")
    sys.exit(0 if worst <= 1e-3 else 1)


if __name__ == "__main__":
    main()
