#!/usr/bin/env python3
"""One streamed answer through HTTP against the same answer decoded in-process, side by side.

`ozfig serve` runs as a child process (one slot); this process loads the same model into an
`Engine` of its own. Runs alternate (in-process, HTTP, in-process, ...), greedy, the same chat
messages (so the same tokens), and each run's decode rate is taken from its first to its last
answer piece: (tokens - 1) / span. The medians are compared; the engine idles while the server
decodes and the other way round.

    python bench/stream_rate.py MODEL.gguf [--max-tokens 256] [--repeat 5] [--threads N] [--serve "ARGS"]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import llama_cpp  # noqa: F401  (before numpy, as ozfig/cli.py)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sse_rate import rate, streamed_rate, wait_ready
from ozfig.chat_format import ChatFormatter
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.llama.model import LlamaModel

MESSAGES = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]


async def in_process(engine: Engine, prompt: list[int], max_tokens: int) -> tuple[float, int]:
    times: list[float] = []
    request = Job(prompt, max_tokens, SamplingParams(temperature=0.0))
    async with engine.generate(request) as gen:
        async for piece in gen:
            if piece:
                times.append(time.perf_counter())
    assert gen.result is not None
    return rate(times, gen.result.completion_tokens), gen.result.completion_tokens


def over_http(port: int, max_tokens: int, extra: dict[str, object]) -> tuple[float, int]:
    return streamed_rate(port, {"messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0, **extra}, 300)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--port", type=int, default=18093)
    ap.add_argument("--body", default="{}", help="extra JSON fields of the HTTP request")
    ap.add_argument("--serve", default="", help="more `ozfig serve` arguments, as one string")
    args = ap.parse_args()
    threads = args.threads or os.cpu_count() or 1
    serve = [sys.executable, "-m", "ozfig", "serve", "--model", args.model, "--port", str(args.port)]
    serve += [
        "--slots",
        "1",
        "--ctx",
        "2048",
        "--threads",
        str(threads),
        "--max-tokens",
        str(args.max_tokens),
    ]
    serve += ["--log-level", "warning", *shlex.split(args.serve)]
    proc = subprocess.Popen(serve)
    try:
        wait_ready(args.port, proc, "/health")
        model = LlamaModel(args.model)
        prompt = ChatFormatter(model).tokens(MESSAGES)
        engine = Engine(model, EngineConfig(slots=1, ctx=2048, threads=threads))
        extra = json.loads(args.body)
        asyncio.run(in_process(engine, prompt, 16))  # warm-up, both sides
        over_http(args.port, 16, extra)
        ours, served = [], []
        for _ in range(args.repeat):
            ours.append(asyncio.run(in_process(engine, prompt, args.max_tokens)))
            served.append(over_http(args.port, args.max_tokens, extra))
        engine.close()
    finally:
        proc.terminate()
        proc.wait(30)
    row = {
        "tokens": [t for _, t in ours] + [t for _, t in served],
        "in_process_decode_tok_s": round(statistics.median(r for r, _ in ours), 1),
        "http_decode_tok_s": round(statistics.median(r for r, _ in served), 1),
    }
    row["ratio"] = round(row["http_decode_tok_s"] / row["in_process_decode_tok_s"], 3)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
