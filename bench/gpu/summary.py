#!/usr/bin/env python3
"""Compact summary of a bench/gpu/run.sh output folder: the phase lines, then each phase's rows.

python bench/gpu/summary.py OUT
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any


def rows(path: Path) -> list[dict[str, Any]]:
    out = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
    return out


def tail(path: Path, n: int = 25) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join("    " + line[:300] for line in lines[-n:])


def main() -> None:
    out = Path(sys.argv[1])
    summary = (out / "summary.txt").read_text() if (out / "summary.txt").exists() else ""
    print("=== phases\n" + summary.rstrip())

    print("=== prompt: GET /prompt/{q} with web context (fake DuckDuckGo + pages)")
    for r in rows(out / "prompt.log"):
        if "query" in r:
            keys = ("status", "stream", "ttft_s", "total_s", "answer_chars", "completion_tokens",
                    "prompt_tokens", "sources", "finish_reason", "error")  # fmt: skip
            print("  " + " ".join(f"{k}={r[k]}" for k in keys if k in r))
        else:
            print("  " + json.dumps(r))

    print("=== engine: ozfig's engine / llama.cpp's loop (decode tok/s, end-to-end tok/s)")
    for r in rows(out / "engine.log"):
        if "sequences" in r:
            d, e = "decode_tokens_per_s", "end_to_end_tokens_per_s"
            print(
                f"  B={r['sequences']:>3}  decode {r.get('ozfig_' + d)} / {r.get('llama.cpp_' + d)} = "
                f"{r.get('ratio_' + d)}   e2e {r.get('ozfig_' + e)} / {r.get('llama.cpp_' + e)} = {r.get('ratio_' + e)}"
            )

    print("=== serving: /v1/chat/completions (tok/s, per-request tok/s, p50 s, TTFT s, tokens, failed)")
    by_key: dict[tuple[str, int, bool], dict[str, Any]] = {}
    for r in rows(out / "serving.log"):
        by_key[(r["label"], r["clients"], r["stream"])] = r
        print(
            f"  {r['label']:<20} C={r['clients']:>3} {'stream' if r['stream'] else 'json  '} "
            f"{r['tokens_per_s']:>8} {r['per_request_tokens_per_s']:>7} {r['p50_latency_s']:>6} "
            f"{r['mean_ttft_s']} {r['completion_tokens']} {r['failed']} {' '.join(r['errors'])[:120]}"
        )
    for (label, clients, stream), r in sorted(by_key.items()):
        if label == "ozfig":
            other = next(
                (
                    v
                    for k, v in by_key.items()
                    if k[0].startswith("llama-server") and k[1:] == (clients, stream)
                ),
                None,
            )
            if other and other["tokens_per_s"]:
                ratio = round(r["tokens_per_s"] / other["tokens_per_s"], 3)
                print(f"  ozfig / llama-server  C={clients:>3} {'stream' if stream else 'json  '} {ratio}")

    verify = rows(out / "verify.log")
    if verify:
        print("=== verify: a decode of 1 + k rows per sequence against 1 row (ms, relative)")
        for r in verify:
            print(f"  B={r['sequences']:>3} k={r['k']:>2} {r['decode_ms']:>8} {r['relative']}")
    for name in ("parts", "backend"):
        for r in rows(out / f"{name}.log"):
            print(f"=== {name}: " + json.dumps(r))

    for line in summary.splitlines():
        name, _, rest = line.partition(": rc=")
        if rest and not rest.startswith("0,"):
            print(f"=== {name} failed: last lines of {name}.log")
            print(tail(out / f"{name}.log"))


if __name__ == "__main__":
    main()
