#!/usr/bin/env python3
"""Web context: time to first token of /prompt by web-context budget, and search+read latency.

Both against the local fixture servers (fake DuckDuckGo and the page server on 127.0.0.2,
serving the retrieval corpus of tests/support/retrieval_corpus.py), so what is measured is
ozfig's own work: search parsing, page reading, extraction, ranking, and the prefill of the
web context. Caches are off and the KV prompt cache is off, so every request does all of it.

python bench/web_context_bench.py ttft MODEL.gguf [--budgets 0,512,1024,2048] [--runs 3] [--threads 2]
python bench/web_context_bench.py latency [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import llama_cpp  # noqa: F401  (before anything imports numpy, as the server's entry point does)
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.app import create_app
from server.search.duckduckgo import DuckDuckGo
from server.settings import Settings
from tests.support.fake_duckduckgo import FakeDuckDuckGo
from tests.support.fake_web import FakeWeb
from tests.support.processes import free_port
from tests.support.retrieval_corpus import questions
from tests.support.search_client import make_search, run_with


def fixtures() -> tuple[FakeDuckDuckGo, FakeWeb]:
    ddg, web = FakeDuckDuckGo().start(), FakeWeb().start()
    ddg.mode = "empty"
    for q in questions():
        ddg.results[q.query] = [(t, web.url(path), s) for t, path, s in q.results]
    return ddg, web


def serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=5).status_code == 200:
                return server, thread, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def first_token(base: str, query: str) -> tuple[float, float, int, int]:
    """(seconds to the first token event, seconds to done, prompt tokens, sources) of one streamed /prompt."""
    start = time.perf_counter()
    ttft = 0.0
    with httpx.stream("GET", f"{base}/prompt/{quote(query)}?stream=true", timeout=3600) as r:
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event == "token" and not ttft:
                    ttft = time.perf_counter() - start
            elif line.startswith("data: ") and event == "done":
                done = json.loads(line[6:])
                return ttft, time.perf_counter() - start, done["usage"]["prompt_tokens"], len(done["sources"])
    raise RuntimeError("no done event")


def ttft(args: argparse.Namespace) -> None:
    ddg, web = fixtures()
    qs = questions()
    rows = []
    for budget in [int(b) for b in args.budgets.split(",")]:
        settings = Settings(
            model=args.model,
            search_url=ddg.url,
            search_html_url=ddg.html_url,
            fetch_allow=("127.0.0.2/32",),
            web_context_tokens=budget,
            search_timeout=30.0,
            search_cache_size=0,
            page_cache_size=0,
            ctx=4096,
            max_tokens=4,
            temperature=0.0,
            slots=1,
            threads=args.threads,
            prompt_cache="off",
            log_level="warning",
        )
        server, thread, base = serve(settings)
        try:
            first_token(base, "warm up")  # first decode allocations
            for i in range(args.runs):
                load = os.getloadavg()[0]
                t, _total, prompt_tokens, sources = first_token(base, qs[i % len(qs)].query)
                rows.append(
                    {
                        "budget": budget,
                        "ttft_s": round(t, 3),
                        "prompt_tokens": prompt_tokens,
                        "sources": sources,
                        "load1": round(load, 1),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        finally:
            server.should_exit = True
            thread.join(60)
    print("budget  median TTFT s  prompt tokens  load")
    for budget in sorted({r["budget"] for r in rows}):
        sel = [r for r in rows if r["budget"] == budget]
        print(
            f"{budget:>6}  {statistics.median(r['ttft_s'] for r in sel):>13.2f}  "
            f"{statistics.median(r['prompt_tokens'] for r in sel):>13.0f}  {max(r['load1'] for r in sel):>4}"
        )
    ddg.stop()
    web.stop()


def latency(args: argparse.Namespace) -> None:
    ddg, web = fixtures()
    search = make_search(
        DuckDuckGo(ddg.url, ddg.html_url, max_bytes=1_000_000, cooldown=60.0),
        timeout=30.0,
        read_pages=args.read_pages,
        resolver=None,
        observe_connect=None,
    )

    async def measure(s):  # type: ignore[no-untyped-def]
        times = []
        for _ in range(args.rounds):
            for q in questions():
                start = time.perf_counter()
                got = await s.passages(q.query)
                times.append(time.perf_counter() - start)
                assert got
        return times

    load = os.getloadavg()[0]
    times = sorted(run_with(search, measure))
    n = len(times)
    pick = lambda p: times[min(n - 1, int(p * n))]  # noqa: E731
    print(
        json.dumps(
            {
                "searches": n,
                "read_pages": args.read_pages,
                "p50_ms": round(pick(0.5) * 1000, 1),
                "p90_ms": round(pick(0.9) * 1000, 1),
                "p99_ms": round(pick(0.99) * 1000, 1),
                "max_ms": round(times[-1] * 1000, 1),
                "load1": round(load, 1),
            }
        )
    )
    ddg.stop()
    web.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("ttft")
    t.add_argument("model")
    t.add_argument("--budgets", default="0,512,1024,2048")
    t.add_argument("--runs", type=int, default=3)
    t.add_argument("--threads", type=int, default=2)
    t.set_defaults(run=ttft)
    lat = sub.add_parser("latency")
    lat.add_argument("--rounds", type=int, default=5)
    lat.add_argument("--read-pages", type=int, default=3)
    lat.set_defaults(run=latency)
    args = ap.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
