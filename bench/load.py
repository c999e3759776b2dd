#!/usr/bin/env python3
"""Load generator for OpenAI-compatible chat servers (ozfig, llama-cpp-python's, llama-server).

C concurrent clients each send requests back to back until R requests are done in total,
to `POST {url}/v1/chat/completions`, streaming or not, and the run reports generated
tokens per second over the whole run (sum of completion tokens / wall time), per-client
tokens/s, time to first token (streaming), and latency percentiles. Completion tokens come
from the server's `usage` (streaming: counted chunks when no usage is sent).

    python bench/load.py --url http://127.0.0.1:8080 --clients 8 --requests 16 --max-tokens 128 [--stream] [--first N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import aiohttp

TOPICS = [
    "the history of the bicycle",
    "how volcanoes form",
    "the life of honey bees",
    "why the sky is blue",
    "the first moon landing",
    "how bread is made",
    "the rules of chess",
    "how a compiler works",
    "the water cycle",
    "the Roman empire",
    "how vaccines work",
    "the invention of the printing press",
    "how airplanes fly",
    "the story of jazz",
    "the deep ocean",
    "how batteries store energy",
]


@dataclass
class Result:
    ok: bool
    tokens: int
    latency: float
    ttft: float | None
    error: str = ""


# what request i asks for: topic i, in form i // len(TOPICS) (so `--first` can give a run questions
# no earlier run asked: a server that remembers its answers gains nothing from the last run)
FORMS = [
    "Write a long, detailed essay about {}.",
    "Write a long blog post for beginners about {}.",
    "Write a long letter to a curious friend explaining {}.",
    "Write a long lecture for high-school students on {}.",
]


def payload(i: int, max_tokens: int, stream: bool, model: str) -> dict[str, object]:
    form = FORMS[(i // len(TOPICS)) % len(FORMS)]
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful and detailed assistant."},
            {"role": "user", "content": form.format(TOPICS[i % len(TOPICS)])},
        ],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


async def one(session: aiohttp.ClientSession, url: str, body: dict[str, object]) -> Result:
    start = time.perf_counter()
    ttft = None
    try:
        async with session.post(url + "/v1/chat/completions", json=body) as resp:
            if resp.status != 200:
                return Result(
                    False,
                    0,
                    time.perf_counter() - start,
                    None,
                    f"HTTP {resp.status}: {(await resp.text())[:200]}",
                )
            if not body["stream"]:
                data = await resp.json()
                tokens = int(data["usage"]["completion_tokens"])
                return Result(True, tokens, time.perf_counter() - start, None)
            chunks = 0
            usage_tokens = None
            async for raw in resp.content:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                data_s = line[5:].strip()
                if data_s == "[DONE]":
                    break
                data = json.loads(data_s)
                if data.get("usage"):
                    usage_tokens = int(data["usage"]["completion_tokens"])
                for choice in data.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        chunks += 1
                        if ttft is None:
                            ttft = time.perf_counter() - start
            tokens = usage_tokens if usage_tokens is not None else chunks
            return Result(True, tokens, time.perf_counter() - start, ttft)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return Result(False, 0, time.perf_counter() - start, None, repr(exc))


async def run(
    url: str, clients: int, requests: int, max_tokens: int, stream: bool, model: str, first: int = 0
) -> dict[str, object]:
    counter = iter(range(first, first + requests))
    results: list[Result] = []
    timeout = aiohttp.ClientTimeout(total=3600)

    async def client(session: aiohttp.ClientSession) -> None:
        for i in counter:
            results.append(await one(session, url, payload(i, max_tokens, stream, model)))

    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=clients, force_close=True)
    ) as session:
        # one warm-up request, not counted
        await one(session, url, payload(99, 8, stream, model))
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        wall = time.perf_counter() - start
    good = [r for r in results if r.ok]
    lat = sorted(r.latency for r in good) or [0.0]
    tokens = sum(r.tokens for r in good)
    ttfts = [r.ttft for r in good if r.ttft is not None]
    return {
        "url": url,
        "clients": clients,
        "stream": stream,
        "requests": len(results),
        "failed": len(results) - len(good),
        "errors": sorted({r.error for r in results if not r.ok})[:3],
        "completion_tokens": tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
        "per_request_tokens_per_s": round(statistics.mean(r.tokens / r.latency for r in good), 1)
        if good
        else 0.0,
        "p50_latency_s": round(lat[len(lat) // 2], 2),
        "p95_latency_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.95))], 2),
        "mean_ttft_s": round(statistics.mean(ttfts), 3) if ttfts else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=0, help="total requests (default 2 per client)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--model", default="model")
    ap.add_argument("--label", default="")
    ap.add_argument("--first", type=int, default=0, help="number of the first request (which question it asks)")
    args = ap.parse_args()
    out = asyncio.run(
        run(
            args.url,
            args.clients,
            args.requests or 2 * args.clients,
            args.max_tokens,
            args.stream,
            args.model,
            args.first,
        )
    )
    out["label"] = args.label
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
