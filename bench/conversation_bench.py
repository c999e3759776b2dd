#!/usr/bin/env python3
"""Multi-turn chats side by side: ozfig against llama-server, in one run, as chat clients send them.

Each turn resends the whole conversation (streaming /v1/chat/completions, greedy, 120-word user
turns, `--answer-tokens` answers); the time to first token of every turn is measured, and the
prompt tokens each server says it reused (ozfig: usage.prompt_tokens_details.cached_tokens;
llama-server: timings.cache_n). Scenarios:
  a  one conversation, `--turns` turns, 1 slot;
  b  4 conversations taking turns on 2 slots (A1 B1 C1 D1 A2 B2 ...: more conversations than slots);
  c  a web-augmented chat: ozfig with web_search on (a local fake DuckDuckGo and pages), llama-server
     with the same kind of sources pasted into each user message by the client, as a RAG client does.

    python bench/conversation_bench.py MODEL.gguf [--llama-server PATH] [--scenarios abc] [--turns 6]

Prints one JSON line per turn and a summary per scenario (ratios of summed TTFT over turns 2+).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ["river", "mountain", "city", "history", "language", "science", "music", "garden", "winter", "summer", "engine", "bridge", "forest", "ocean", "library", "market", "kitchen", "journey", "planet", "harbor", "village", "castle", "island", "desert", "valley", "storm", "lantern"]


def user_turn(rng: random.Random, n_words: int = 120) -> str:
    return "Tell me more about this: " + " ".join(rng.choice(WORDS) for _ in range(n_words)) + "."


def sources_text(rng: random.Random, k: int = 3) -> str:
    """What a RAG client would paste: numbered sources of about 150 words each."""
    return " ".join(f"[{i}] Source {i}: " + " ".join(rng.choice(WORDS) for _ in range(150)) for i in range(1, k + 1))


def wait_up(url: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def turn(base: str, messages: list[dict[str, str]], max_tokens: int, web: bool) -> tuple[str, float, int, int]:
    """(answer, ttft, prompt tokens, reused tokens) of one streamed turn."""
    body: dict[str, object] = {
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if web:
        body["web_search"] = True
    start = time.perf_counter()
    ttft = None
    parts: list[str] = []
    prompt_tokens = cached = 0
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    if ttft is None:
                        ttft = time.perf_counter() - start
                    parts.append(piece)
            usage = chunk.get("usage")
            if usage:
                prompt_tokens = usage.get("prompt_tokens", 0)
                cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", cached)
            timings = chunk.get("timings")
            if timings:  # llama-server
                cached = timings.get("cache_n", cached)
                prompt_tokens = prompt_tokens or timings.get("prompt_n", 0) + cached
    return "".join(parts), ttft if ttft is not None else time.perf_counter() - start, prompt_tokens, cached


def run_scenario(name: str, base: str, server: str, args: argparse.Namespace) -> list[dict[str, object]]:
    rng = random.Random(7)
    n_conv = 4 if name == "b" else 1
    convs: list[list[dict[str, str]]] = [[{"role": "system", "content": "You are a helpful assistant."}] for _ in range(n_conv)]
    rows = []
    for t in range(1, args.turns + 1):
        for c in range(n_conv):
            text = user_turn(rng)
            if name == "c" and server == "llama-server":
                text = f"{text}\nWeb results: {sources_text(rng)}"
            convs[c].append({"role": "user", "content": text})
            answer, ttft, prompt_tokens, cached = turn(base, convs[c], args.answer_tokens, name == "c" and server == "ozfig")
            convs[c].append({"role": "assistant", "content": answer})
            row = {"scenario": name, "server": server, "conversation": c, "turn": t, "ttft": round(ttft, 3),
                   "prompt_tokens": prompt_tokens, "cached_tokens": cached}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def start_ozfig(model: str, slots: int, args: argparse.Namespace, search_url: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "ozfig", "serve", "--model", model, "--port", str(args.port), "--slots", str(slots),
           "--ctx", str(args.ctx), "--threads", str(args.threads), "--max-tokens", str(args.answer_tokens),
           "--log-level", "warning", "--search-url", search_url, "--search-html-url", search_url.rstrip("/") + "/html/",
           "--fetch-allow", "127.0.0.2/32", "--search-timeout", "2"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open("/tmp/bench-conv-ozfig.log", "wb"))


def start_llama_server(binary: str, model: str, slots: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    cmd = [binary, "-m", model, "-np", str(slots), "-c", str(args.ctx * slots), "-t", str(args.threads),
           "--host", "127.0.0.1", "--port", str(args.port)]
    if " amx_tile" in Path("/proc/cpuinfo").read_text():
        cmd.append("--no-repack")  # as ozfig loads on AMX CPUs (bench/serving_bench.sh)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open("/tmp/bench-conv-llama-server.log", "wb"))


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def summary(rows: list[dict[str, object]]) -> None:
    for name in sorted({str(r["scenario"]) for r in rows}):
        per = {}
        for server in ("ozfig", "llama-server"):
            mine = [r for r in rows if r["scenario"] == name and r["server"] == server and int(r["turn"]) >= 2]  # type: ignore[call-overload]
            if mine:
                per[server] = sum(float(r["ttft"]) for r in mine)  # type: ignore[arg-type]
        line: dict[str, object] = {"scenario": name, **{f"{k}_ttft_turns2plus": round(v, 2) for k, v in per.items()}}
        if len(per) == 2:
            line["ratio"] = round(per["ozfig"] / per["llama-server"], 2)
        print(json.dumps({"summary": line}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--llama-server", default=os.path.expanduser("~/.cache/ozfig-llama.cpp/build/bin/llama-server"))
    ap.add_argument("--scenarios", default="abc")
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--answer-tokens", type=int, default=48)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--port", type=int, default=18181)
    args = ap.parse_args()
    from tests.support.fake_duckduckgo import FakeDuckDuckGo

    fake = FakeDuckDuckGo().start()
    rows: list[dict[str, object]] = []
    try:
        for name in args.scenarios:
            slots = 2 if name == "b" else 1
            servers = [("ozfig", lambda s=slots: start_ozfig(args.model, s, args, fake.url))]
            if Path(args.llama_server).exists():
                servers.append(("llama-server", lambda s=slots: start_llama_server(args.llama_server, args.model, s, args)))
            for server, start in servers:
                proc = start()
                try:
                    wait_up(f"http://127.0.0.1:{args.port}/health")
                    rows += run_scenario(name, f"http://127.0.0.1:{args.port}", server, args)
                finally:
                    stop(proc)
    finally:
        fake.stop()
    summary(rows)


if __name__ == "__main__":
    main()
