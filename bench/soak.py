#!/usr/bin/env python3
"""1,000 requests with random cancellations through the engine: slots, KV cells and memory after.

python bench/soak.py MODEL.gguf [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import ozfig.llama.backend  # noqa: F401  (imports llama_cpp before numpy)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_engine_soak import anon_rss_kib, traffic

from ozfig.chat_format import ChatFormatter
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.llama.model import LlamaModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args()
    model = LlamaModel(args.model)
    fmt = ChatFormatter(model)
    words = ("cats", "rain", "maps", "tea", "ships", "bees")
    prompts = [fmt.tokens([{"role": "user", "content": f"Say something about {w}."}]) for w in words]
    engine = Engine(model, EngineConfig(slots=4, ctx=256, batch=128, threads=0, max_waiting=64))
    rng = random.Random(11)
    asyncio.run(traffic(engine, prompts, 100, rng))  # warm-up
    before = anon_rss_kib()
    start = time.perf_counter()
    seen = asyncio.run(traffic(engine, prompts, args.requests, rng))
    wall = time.perf_counter() - start
    after = anon_rss_kib()
    kv_consistent = all(
        engine.runner.ctx.seq_pos_max(s) == len(engine.runner.cache.tokens[s]) - 1
        for s in range(4)
    )
    stats = engine.stats
    print(
        json.dumps(
            {
                "requests": args.requests,
                "wall_s": round(wall, 1),
                "finished": dict(stats.requests_finished),
                "completed_seen_by_clients": seen,
                "free_slots": engine.scheduler.free_slots,
                "queue_depth": stats.queue_depth,
                "kv_cells_match_kept_prefixes": kv_consistent,
                "anon_rss_before_kib": before,
                "anon_rss_after_kib": after,
                "anon_rss_growth_kib": after - before,
            }
        )
    )
    engine.close()


if __name__ == "__main__":
    main()
