#!/usr/bin/env python3
"""How often a greedy answer changes when other requests are decoded beside it.

Each question is answered alone, then all are answered 8 at a time; the report gives how
many answers are identical and, for the others, the token where they first differ.

    python bench/batch_invariance.py MODEL.gguf [--questions 32] [--tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import llama_cpp  # noqa: F401  (before numpy)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ozfig.chat_format import ChatFormatter
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.llama.model import LlamaModel

SUBJECTS = [
    "cats",
    "rain",
    "the moon",
    "bread",
    "chess",
    "rivers",
    "bees",
    "trains",
    "jazz",
    "glass",
    "maps",
    "tea",
    "volcanoes",
    "paper",
    "salt",
    "clocks",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--questions", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    model = LlamaModel(args.model)
    fmt = ChatFormatter(model)
    prompts = [
        fmt.tokens(
            [{"role": "user", "content": f"Tell me fact number {i} about {SUBJECTS[i % len(SUBJECTS)]}."}]
        )
        for i in range(args.questions)
    ]
    engine = Engine(model, EngineConfig(slots=8, ctx=512, batch=512, threads=0, prompt_cache="off"))
    greedy = SamplingParams(temperature=0.0)

    async def pieces(tokens: list[int]) -> list[str]:
        async with engine.generate(Job(tokens, args.tokens, greedy)) as gen:
            return [p async for p in gen]

    async def alone() -> list[list[str]]:
        return [await pieces(p) for p in prompts]

    async def together() -> list[list[str]]:
        return list(await asyncio.gather(*(pieces(p) for p in prompts)))

    solo = asyncio.run(alone())
    batched = asyncio.run(together())
    firsts = []
    for a, b in zip(solo, batched, strict=True):
        if a != b:
            firsts.append(
                next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            )
    print(
        json.dumps(
            {
                "questions": args.questions,
                "tokens": args.tokens,
                "identical": args.questions - len(firsts),
                "first_differing_token": sorted(firsts),
                "first_token_always_equal": all(a[:1] == b[:1] for a, b in zip(solo, batched, strict=True)),
            }
        )
    )
    engine.close()


if __name__ == "__main__":
    main()
