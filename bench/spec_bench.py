#!/usr/bin/env python3
"""Speculative decoding, side by side in one run: ozfig with and without it, in-process and
through HTTP, against llama-server with and without `--spec-type ngram-mod`.

Two tasks, greedy: `quote` (an answer that repeats a passage of its prompt, as answers that quote
their sources do) and `free` (a story: nothing to look up). Decode rate = (tokens - 1) / the
time from the first answer piece to the last; medians over `--repeat` runs, the configurations
alternating run by run. Every run asks questions no earlier run asked (another passage to quote,
another story): llama-server's ngram-mod keeps one n-gram table for all requests and ozfig a memory
of recent answers, so a question asked again is drafted from its last answer; part 3 measures
that on its own. Both servers keep their default prompt caches.

1. in-process, one slot: `Engine` with `--speculative` off / auto / ngram, a fresh engine per
   run, one engine at a time (two engines' threads in one process make two OpenMP teams, and
   with more OpenMP threads than cores llama.cpp's barriers sleep);
2. HTTP, one client: `ozfig serve` off and auto, llama-server none and ngram-mod (all four
   started together, `--slots 8` / `-np 8`, each idle while another answers);
3. HTTP, one client, a question asked a second time (the second answer's rate): both servers
   draft it from their memory of recent answers;
4. HTTP, 8 clients: the same servers, 8 concurrent streams of the `quote` task (8 passages),
   then 16 of `bench/load.py`'s essays; total completion tokens per second.

    python bench/spec_bench.py MODEL.gguf [--llama-server BIN] [--repeat 3] [--max-tokens 120]
        [--parts engine,http,again,clients] [--servers ozfig-off,llama-server-none,...] [--clients-tasks quote,essays]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
    "The {river} is a river that flows through {region}, including {city}. At {miles} miles, it is "
    "the longest river entirely in {country} and the second-longest in the {union}, after the "
    "{other}. The river rises at {river} Head in {shire} and flows into the {river} Estuary on "
    "the {sea} between {a} and {b}. The lower reaches of the river are called the {reach}, "
    "after its long tidal reach up to {lock} Lock. It flows through {c}, where it is sometimes "
    "called the {alias}, {d}, {e} and {f}."
)
SYLLABLES = ["bran", "tor", "vel", "mar", "ish", "quen", "dal", "rho", "sten", "ock", "lir", "wen", "gar", "ath", "ul"]
STORIES = [
    "a dragon who learns to bake bread",
    "a lighthouse keeper who finds a message in a bottle",
    "a robot that wants to become a gardener",
    "two friends lost in a snowstorm",
    "a clockmaker who can stop time",
    "a fox who runs a small library",
    "a girl who builds a boat from old doors",
    "an astronaut who hears music on the moon",
    "a village that forgets its own name",
]


def name(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def task(kind: str, n: int) -> list[dict[str, str]]:
    """Question number `n` of a kind: `quote`, a passage about a made-up river to repeat word for
    word, or `free`, a story (a different one for each n)."""
    if kind == "free":
        form = ("Write a long story about {}.", "Tell a long tale about {}.")[n // len(STORIES) % 2]
        return [{"role": "user", "content": form.format(STORIES[n % len(STORIES)])}]
    rng = random.Random(n)
    words = {k: name(rng) for k in ("river", "region", "city", "country", "union", "other", "shire", "sea")}
    words |= {k: name(rng) for k in ("a", "b", "reach", "lock", "c", "alias", "d", "e", "f")}
    text = PASSAGE.format(miles=rng.randint(90, 400), **words)
    return [{"role": "user", "content": f"Repeat the following text exactly, word for word:\n\n{text}"}]


KINDS = ("quote", "free")
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


async def clients(port: int, questions: list[list[dict[str, str]]], max_tokens: int) -> float:
    """One concurrent stream per question: completion tokens per second over the wall time."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    done = await asyncio.gather(
        *(loop.run_in_executor(None, stream, port, messages, max_tokens) for messages in questions)
    )
    return sum(tokens for _, tokens in done) / (time.perf_counter() - start)


def ozfig_command(model: str, port: int, mode: str, threads: int, max_tokens: int, log_level: str) -> list[str]:
    """`ozfig serve` as these benchmarks start it: 8 slots of 2,048 cells, `--speculative mode`."""
    cmd = [sys.executable, "-m", "ozfig", "serve", "--model", model, "--port", str(port)]
    cmd += ["--slots", "8", "--ctx", "2048", "--threads", str(threads), "--speculative", mode]
    return [*cmd, "--max-tokens", str(max_tokens), "--log-level", log_level]


def start_servers(args: argparse.Namespace, threads: int) -> dict[str, tuple[int, subprocess.Popen[bytes]]]:
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    port = args.port
    for mode in ("off", "auto"):
        if f"ozfig-{mode}" not in args.servers.split(","):
            continue
        cmd = ozfig_command(args.model, port, mode, threads, args.max_tokens, "warning")
        servers[f"ozfig-{mode}"] = (port, subprocess.Popen(cmd, cwd=HERE.parent))
        port += 1
    if args.llama_server and os.path.exists(args.llama_server):
        amx = " amx_tile" in Path("/proc/cpuinfo").read_text()
        for spec in ("none", "ngram-mod"):
            if f"llama-server-{spec}" not in args.servers.split(","):
                continue
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the GGUF file every server and the in-process engine load")
    ap.add_argument(
        "--llama-server",
        default=str(Path.home() / ".cache/ozfig-llama.cpp/build/bin/llama-server"),
        help="llama-server binary (tests/support/llama_server_build.py builds it from the pinned sdist)",
    )
    ap.add_argument("--max-tokens", type=int, default=120, help="tokens per answer")
    ap.add_argument("--repeat", type=int, default=3, help="questions of each kind per setup (medians)")
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: every core)")
    ap.add_argument("--port", type=int, default=18110, help="first port of the servers (127.0.0.1)")
    ap.add_argument("--parts", default="engine,http,again,clients", help="which parts to run (see above)")
    ap.add_argument(
        "--servers",
        default="ozfig-off,ozfig-auto,llama-server-none,llama-server-ngram-mod",
        help="which servers the HTTP parts start",
    )
    ap.add_argument("--clients-tasks", default="quote,essays", help="the 8-client part's tasks")
    args = ap.parse_args()
    threads = args.threads or os.cpu_count() or 1
    parts = args.parts.split(",")

    if "engine" in parts:
        model = LlamaModel(args.model)
        formatter = ChatFormatter(model)
        found: dict[tuple[str, str], list[float]] = {}
        for run in range(args.repeat):
            for mode in ("off", "auto", "ngram"):
                config = EngineConfig(slots=1, ctx=2048, threads=threads, speculative=mode)  # type: ignore[arg-type]
                engine = Engine(model, config)
                try:
                    for kind in KINDS:
                        prompt = formatter.tokens(task(kind, run))
                        tok_s, _ = asyncio.run(in_process(engine, prompt, args.max_tokens))
                        found.setdefault((kind, mode), []).append(tok_s)
                finally:
                    engine.close()
        print_rows("engine", found, {"auto": "off", "ngram": "off"})

    if "http" in parts or "again" in parts or "clients" in parts:
        servers = start_servers(args, threads)
        try:
            for port, _ in servers.values():  # warm-up
                stream(port, task("free", 1000), 8)
            vs = {
                "ozfig-auto": "ozfig-off",
                "llama-server-ngram-mod": "llama-server-none",
                "ozfig-off": "llama-server-none",
            }
            if "http" in parts:
                found = {}
                for run in range(args.repeat):
                    for kind in KINDS:
                        for name, (port, _) in servers.items():
                            found.setdefault((kind, name), []).append(
                                stream(port, task(kind, 100 + run), args.max_tokens)[0]
                            )
                print_rows("http-1-client", found, vs)
                for kind in KINDS:
                    ours, theirs = (
                        found.get((kind, "ozfig-auto")),
                        found.get((kind, "llama-server-ngram-mod")),
                    )
                    if ours and theirs:
                        ratio = statistics.median(ours) / statistics.median(theirs)
                        print(
                            json.dumps(
                                {
                                    "part": "http-1-client",
                                    "task": kind,
                                    "ozfig-auto/llama-server-ngram-mod": round(ratio, 3),
                                }
                            )
                        )
            if "again" in parts:  # a question asked a second time: what a memory of answers gives
                found = {}
                for run in range(args.repeat):
                    for kind in KINDS:
                        for name, (port, _) in servers.items():
                            stream(port, task(kind, 300 + run), args.max_tokens)
                            found.setdefault((kind, name), []).append(
                                stream(port, task(kind, 300 + run), args.max_tokens)[0]
                            )
                print_rows("http-1-client-asked-again", found, vs)
            if "clients" in parts:
                found = {}
                for run in range(args.repeat):
                    questions = [task("quote", 200 + 8 * run + c) for c in range(8)]
                    for name, (port, _) in servers.items():
                        if "quote" in args.clients_tasks.split(","):
                            found.setdefault(("quote", name), []).append(
                                asyncio.run(clients(port, questions, args.max_tokens))
                            )
                        if "essays" not in args.clients_tasks.split(","):
                            continue
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
                                "--first",
                                str(16 * run),
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
