#!/usr/bin/env python3
"""What a grammar and logprobs cost per generated token: decode tokens/s with and without,
ozfig's engine and (when built) llama-server side by side, in one run.

One sequence, greedy, the same prompt; each variant decodes STEPS tokens (a grammar that
never completes keeps it going: a JSON array of strings, the shape of structured output).
Variants: plain; a grammar; logprobs (the chosen token's only); top 20 logprobs. Also timed:
one llama.cpp grammar pass over the whole vocabulary (what a grammar first in the chain would
cost every token; ozfig's `ConstrainedSampler` checks only the chain's pick). Runs
alternate and the medians are compared; decode speed counts the tokens after the first
(`Finished.token_gaps`), so the prompt is not in it. llama-server gets the same variants on
/completion (`grammar`, `n_probs`; its `timings.predicted_per_second`).

    python bench/grammar_bench.py MODEL.gguf [--steps 128] [--repeat 3] [--llama-server BIN]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import urllib.request
from pathlib import Path

# llama_cpp before numpy (see ozfig/cli.py)
import llama_cpp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ozfig.chat_format import ChatFormatter
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.llama.grammar import Grammar
from ozfig.llama.model import LlamaModel
from tests.support.llama_server import llama_server, llama_server_bin

# a JSON array of short strings that never ends: every token goes through the grammar
ENDLESS_JSON = r'''root ::= "[" item ("," " "? item)*
item ::= "\"" [^"\\\x7F\x00-\x1F]{1,40} "\""
'''
QUESTION = "List the names of twenty European cities as a JSON array of strings."
VARIANTS = {
    "plain": {},
    "grammar": {"grammar": ENDLESS_JSON},
    "logprobs": {"logprobs": 0},
    "top20": {"logprobs": 20},
}


def sampling(variant: dict[str, object], eos: int) -> SamplingParams:
    gbnf = variant.get("grammar")
    return SamplingParams(
        temperature=0.0,
        ignore_eos="grammar" not in variant,
        grammar=Grammar(str(gbnf)) if gbnf else None,
        # under the grammar, end-of-text is banned: the array then never completes, whatever the
        # model (a random-weight one may pick it as soon as one item is closed)
        logit_bias=((eos, -1e9),) if gbnf else (),
        logprobs=variant.get("logprobs"),  # type: ignore[arg-type]
    )


async def ozfig_run(engine: Engine, prompt: list[int], steps: int, variant: dict[str, object]) -> float:
    async with engine.generate(Job(prompt, steps, sampling(variant, engine.model.eos))) as gen:
        await gen.text()
    assert gen.result is not None and gen.result.completion_tokens == steps, gen.result
    return len(gen.result.token_gaps) / sum(gen.result.token_gaps)


def server_run(base: str, prompt: str, steps: int, variant: dict[str, object], eos: int) -> float:
    body: dict[str, object] = {"prompt": prompt, "n_predict": steps, "temperature": 0, "cache_prompt": False}
    if "grammar" in variant:
        body["grammar"] = variant["grammar"]
        body["logit_bias"] = [[eos, False]]  # as ozfig's run: the array never completes
    else:
        body["ignore_eos"] = True
    if "logprobs" in variant:
        body["n_probs"] = max(int(variant["logprobs"]), 1)  # type: ignore[call-overload]
    request = urllib.request.Request(
        base + "/completion", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as resp:
        answer = json.loads(resp.read())
    return float(answer["timings"]["predicted_per_second"])


def full_vocabulary_pass_ms(model: LlamaModel, gbnf: str, text: str) -> float:
    """Median milliseconds of one grammar pass over every token, along `text`'s tokens."""
    import ctypes
    import time

    import numpy as np

    from ozfig.llama.constrained import TOKEN_DATA, grammar_sampler

    grammar = grammar_sampler(model, Grammar(gbnf))
    buf = np.zeros(model.n_vocab, dtype=TOKEN_DATA)
    times = []
    try:
        for token in model.tokenize(text):
            buf["id"] = np.arange(model.n_vocab)
            buf["logit"] = 0.0
            cur = llama_cpp.llama_token_data_array(
                buf.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)), len(buf), -1, False
            )
            t0 = time.perf_counter()
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(cur))
            times.append(time.perf_counter() - t0)
            if not np.isfinite(buf["logit"][token]):
                break  # the vocabulary spells the sample otherwise (byte pieces): accepting would abort
            llama_cpp.llama_sampler_accept(grammar, token)
    finally:
        llama_cpp.llama_sampler_free(grammar)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llama-server", default=None)
    args = ap.parse_args()
    model = LlamaModel(args.model)
    formatter = ChatFormatter(model)
    prompt_text = formatter.text([{"role": "user", "content": QUESTION}])
    prompt = formatter.tokens([{"role": "user", "content": QUESTION}])
    engine = Engine(model, EngineConfig(slots=1, ctx=2048, batch=512, threads=args.threads, prompt_cache=False))
    results: dict[str, dict[str, list[float]]] = {"ozfig": {v: [] for v in VARIANTS}}
    binary = args.llama_server or llama_server_bin()
    try:
        for _ in range(args.repeat):
            for name, variant in VARIANTS.items():
                results["ozfig"][name].append(asyncio.run(ozfig_run(engine, prompt, args.steps, variant)))
    finally:
        engine.close()
    if binary:
        results["llama-server"] = {v: [] for v in VARIANTS}
        with llama_server(Path(args.model), "-t", str(args.threads)) as base:
            for _ in range(args.repeat):
                for name, variant in VARIANTS.items():
                    results["llama-server"][name].append(server_run(base, prompt_text, args.steps, variant, model.eos))
    print(f"decode tokens/s, one sequence, {args.steps} tokens, median of {args.repeat}:")
    print(f"{'':14}" + "".join(f"{v:>12}" for v in VARIANTS) + f"{'grammar x':>12}{'top20 x':>10}")
    for who, by_variant in results.items():
        med = {v: statistics.median(xs) for v, xs in by_variant.items()}
        row = "".join(f"{med[v]:>12.1f}" for v in VARIANTS)
        print(f"{who:14}{row}{med['grammar'] / med['plain']:>12.2f}{med['top20'] / med['plain']:>10.2f}")
    sample = '["Paris", "Berlin", "Madrid", "Rome", "Vienna", "Prague", "Lisbon", "Dublin"'
    print(f"one grammar pass over all {model.n_vocab} tokens: {full_vocabulary_pass_ms(model, ENDLESS_JSON, sample):.1f} ms")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
