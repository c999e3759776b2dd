#!/usr/bin/env python3
"""Speculative decoding, side by side in one run: ozfig with and without it, in-process and
through HTTP, against llama-server with and without `--spec-type ngram-mod`.

Two tasks, greedy: `quote` (an answer that repeats a passage of its prompt, as answers that quote
their sources do) and `free` (a story: nothing to look up). Decode rate = (tokens - 1) / the
time from the first answer piece to the last; medians over `--repeat` runs, the configurations
alternating run by run.

1. in-process, one slot: `Engine` with `--speculative` off / auto / ngram;
2. HTTP, one client: `ozfig serve` off and auto, llama-server none and ngram-mod (all four
   started together, `--slots 8` / `-np 8`, each idle while another answers);
3. HTTP, 8 clients: the same servers, 8 concurrent streams of the `quote` task, then of
   `bench/load.py`'s essays; total completion tokens per second.

    python bench/spec_bench.py MODEL.gguf [--llama-server BIN] [--repeat 3] [--max-tokens 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

PASSAGE = (
    "The Thames is a river that flows through southern England, including London. At 215 miles, it "
    "is the longest river entirely in England and the second-longest in the United Kingdom, after the "
    "Severn. The river rises at Thames Head in Gloucestershire and flows into the Thames Estuary on "
    "the North Sea between Essex and Kent. The lower reaches of the river are called the Tideway, "
    "after its long tidal reach up to Teddington Lock. It flows through Oxford, where it is sometimes "
    "called the Isis, Reading, Henley-on-Thames and Windsor."
)
TASKS = {
    "quote": [{"role": "user", "content": f"Repeat the following text exactly, word for word:\n\n{PASSAGE}"}],
    "free": [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}],
}
HERE = Path(__file__).resolve().parent


async def in_process(engine: Engine, prompt: list[int], max_tokens: int) -> tuple[float, int]:
    times: list[float] = []
    async with engine.generate(Job(prompt, max_tokens, SamplingParams(temperature=0.0))) as gen:
        async for piece in gen:
            if piece:
                times.append(time.perf_counter())
    assert gen.result is not None
    return rate(times, gen.result.completion_tokens), gen.result.completion_tokens


def stream(port: int, messages: list[dict[str, str]], max_tokens: int) -> tuple[float, int]:
    return streamed_rate(port, {"model": "m", "messages": messages, "max_tokens": max_tokens, "temperature": 0})


async def clients(port: int, messages: list[dict[str, str]], n: int, max_tokens: int) -> float:
    """n concurrent streams of the same task: completion tokens per second over the wall time."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    done = await asyncio.gather(
        *(loop.run_in_executor(None, stream, port, messages, max_tokens) for _ in range(n))
    )
    return sum(tokens for _, tokens in done) / (time.perf_counter() - start)


def start_servers(args: argparse.Namespace, threads: int) -> dict[str, tuple[int, subprocess.Popen[bytes]]]:
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    port = args.port
    for mode in ("off", "auto"):
        cmd = [sys.executable, "-m", "ozfig", "serve", "--model", args.model, "--port", str(port)]
        cmd += ["--slots", "8", "--ctx", "2048", "--threads", str(threads), "--speculative", mode]
        cmd += ["--max-tokens", str(args.max_tokens), "--log-level", "warning", "--prompt-cache", "off"]
        servers[f"ozfig-{mode}"] = (port, subprocess.Popen(cmd, cwd=HERE.parent))
        port += 1
    if args.llama_server and os.path.exists(args.llama_server):
        amx = " amx_tile" in Path("/proc/cpuinfo").read_text()
        for spec in ("none", "ngram-mod"):
            cmd = [args.llama_server, "-m", args.model, "-np", "8", "-c", str(2048 * 8), "-t", str(threads)]
            cmd += ["--host", "127.0.0.1", "--port", str(port), "--spec-type", spec, "--log-disable"]
            cmd += ["--no-repack"] if amx else []
            servers[f"llama-server-{spec}"] = (port, subprocess.Popen(cmd, stderr=subprocess.DEVNULL))
            port += 1
    for port, proc in servers.values():
        wait_ready(port, proc, "/health")
    return servers


def print_rows(part: str, results: dict[tuple[str, str], list[float]], baseline: dict[str, str]) -> None:
    for (task, config), values in results.items():
        row: dict[str, object] = {"part": part, "task": task, "config": config}
        row["tok_s"] = round(statistics.median(values), 1)
        base = results.get((task, baseline.get(config, "")))
        if base and base is not values:
            row["ratio"] = round(statistics.median(values) / statistics.median(base), 3)
        print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument(
        "--llama-server", default=str(Path.home() / ".cache/ozfig-llama.cpp/build/bin/llama-server")
    )
    ap.add_argument("--max-tokens", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--port", type=int, default=18110)
    ap.add_argument("--parts", default="engine,http,clients")
    args = ap.parse_args()
    threads = args.threads or os.cpu_count() or 1
    parts = args.parts.split(",")

    if "engine" in parts:
        model = LlamaModel(args.model)
        formatter = ChatFormatter(model)
        engines = {
            mode: Engine(model, EngineConfig(slots=1, ctx=2048, threads=threads, speculative=mode))  # type: ignore[arg-type]
            for mode in ("off", "auto", "ngram")
        }
        found: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for task, messages in TASKS.items():
                for mode, engine in engines.items():
                    tok_s, _ = asyncio.run(in_process(engine, formatter.tokens(messages), args.max_tokens))
                    found.setdefault((task, mode), []).append(tok_s)
        for engine in engines.values():
            engine.close()
        print_rows("engine", found, {"auto": "off", "ngram": "off"})

    if "http" in parts or "clients" in parts:
        servers = start_servers(args, threads)
        try:
            for port, _ in servers.values():  # warm-up
                stream(port, TASKS["free"], 8)
            vs = {
                "ozfig-auto": "ozfig-off",
                "llama-server-ngram-mod": "llama-server-none",
                "ozfig-off": "llama-server-none",
            }
            if "http" in parts:
                found = {}
                for _ in range(args.repeat):
                    for task, messages in TASKS.items():
                        for name, (port, _) in servers.items():
                            found.setdefault((task, name), []).append(
                                stream(port, messages, args.max_tokens)[0]
                            )
                print_rows("http-1-client", found, vs)
                for task in TASKS:
                    ours, theirs = (
                        found.get((task, "ozfig-auto")),
                        found.get((task, "llama-server-ngram-mod")),
                    )
                    if ours and theirs:
                        ratio = statistics.median(ours) / statistics.median(theirs)
                        print(
                            json.dumps(
                                {
                                    "part": "http-1-client",
                                    "task": task,
                                    "ozfig-auto/llama-server-ngram-mod": round(ratio, 3),
                                }
                            )
                        )
            if "clients" in parts:
                found = {}
                for _ in range(args.repeat):
                    for name, (port, _) in servers.items():
                        found.setdefault(("quote", name), []).append(
                            asyncio.run(clients(port, TASKS["quote"], 8, args.max_tokens))
                        )
                        out = subprocess.run(
                            [
                                sys.executable,
                                str(HERE / "load.py"),
                                "--url",
                                f"http://127.0.0.1:{port}",
                                "--clients",
                                "8",
                                "--requests",
                                "16",
                                "--max-tokens",
                                str(args.max_tokens),
                                "--stream",
                            ],
                            capture_output=True,
                            text=True,
                            check=True,
                        )
                        found.setdefault(("essays", name), []).append(
                            json.loads(out.stdout.splitlines()[-1])["tokens_per_s"]
                        )
                print_rows("http-8-clients", found, vs)
        finally:
            for _, proc in servers.values():
                proc.terminate()
            for _, proc in servers.values():
                proc.wait(60)


if __name__ == "__main__":
    main()
