"""How much of what prompt lookup could give `--speculative auto` gets, without timing noise.

Greedy answers are the same with speculation on and off, so an answer's tokens, captured once,
tell exactly which proposals would be accepted. This captures the greedy answers of `spec_bench.py`'s
questions with the real model, then replays `auto`'s planning (`ozfig.engine.speculation.Speculator`,
the engine's own code) over them with each decode's time taken from a cost curve measured by
`verify_cost.py` (one sequence, 1 + k rows), and compares with an oracle that proposes what the
n-grams offer cut to what will be accepted, when that pays. Ratios are decode time without
speculation over decode time with it (the decodes alone: no Python, no sampling).

    python bench/verify_cost.py MODEL --sequences 1 --max-k 32 --prompt 200 --repeat 7 > costs.jsonl
    python bench/spec_replay.py MODEL --costs costs.jsonl [--questions 8] [--smooth] [--answers FILE]

`cold`: a new engine per answer (as `spec_bench.py`'s in-process part); `warm`: one engine
answers them all in turn (as a server does: its records of acceptance, its memory of answers).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import statistics
import sys
from pathlib import Path

import llama_cpp  # noqa: F401  (before numpy, as ozfig/cli.py)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.spec_bench import KINDS, in_process, task
from ozfig.chat_format import ChatFormatter
from ozfig.engine import speculation
from ozfig.engine.cost_probe import CostProbe
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import EngineStats, Job, Slot
from ozfig.engine.sampling import SamplingParams
from ozfig.engine.stops import StopMatcher
from ozfig.llama.model import LlamaModel

Answer = tuple[str, int, list[int], list[int]]  # kind, question number, prompt, answer tokens


class Costs:
    """Milliseconds of a decode of n rows (one sequence), from `verify_cost.py`'s lines."""

    def __init__(self, path: str, smooth: bool = False) -> None:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.startswith("{")]
        self.ms = {r["k"] + 1: r["decode_ms"] for r in rows if r["sequences"] == 1}
        if smooth:  # past one row, the least-squares line: no planner is paid for the timings' noise
            more = [(n, ms) for n, ms in self.ms.items() if n > 1]
            mean_n, mean_ms = statistics.mean(n for n, _ in more), statistics.mean(ms for _, ms in more)
            spread = sum((n - mean_n) ** 2 for n, _ in more)
            slope = sum((n - mean_n) * (ms - mean_ms) for n, ms in more) / spread
            self.ms |= {n: mean_ms + slope * (n - mean_n) for n, _ in more}
        top = max(self.ms)
        self.top, self.slope = top, (self.ms[top] - self.ms[2]) / max(top - 2, 1)

    def __call__(self, rows: int) -> float:
        return self.ms[rows] if rows in self.ms else self.ms[self.top] + self.slope * (rows - self.top)


def capture(model_path: str, questions: int, max_tokens: int) -> list[Answer]:
    """The greedy answers of the quote and free questions (numbers as spec_bench's parts ask them)."""
    model = LlamaModel(model_path)
    formatter = ChatFormatter(model)
    numbers = [0, 1, 2, 100, 101, 102, 300, 301, 302, *range(40, 40 + questions)]
    captured: list[list[int]] = []
    ended = speculation.Speculator.ended

    def keep(self: speculation.Speculator, slot: Slot) -> None:
        captured.append(list(self.sequences[slot.seq].index.tokens[len(slot.job.prompt) :]))
        ended(self, slot)

    speculation.Speculator.ended = keep  # type: ignore[method-assign]
    engine = Engine(model, EngineConfig(slots=1, ctx=2048, threads=2, speculative="ngram"))
    answers: list[Answer] = []
    try:
        for kind in KINDS:
            for n in numbers:
                prompt = formatter.tokens(task(kind, n))
                asyncio.run(in_process(engine, prompt, max_tokens))  # greedy
                answers.append((kind, n, prompt, captured[-1]))
    finally:
        engine.close()
        speculation.Speculator.ended = ended  # type: ignore[method-assign]
    return answers


def speculator(mode: str, costs: Costs) -> speculation.Speculator:
    spec = speculation.Speculator(mode, 32, 4096, EngineStats())  # type: ignore[arg-type]
    spec.cost.measured([(n, costs(n) / 1000) for n in CostProbe.ROWS])  # as `calibrate` times them
    return spec


def replay(spec: speculation.Speculator, answer: Answer, costs: Costs, oracle: bool = False) -> float:
    """Decode time without speculation over with it, for one answer planned by `spec`."""
    _, _, prompt, tokens = answer
    job = Job(prompt, len(tokens) + 1, SamplingParams(temperature=0.0))
    decoder = codecs.getincrementaldecoder("utf-8")()
    slot = Slot(0, job, None, StopMatcher(()), decoder)  # type: ignore[arg-type]  # never samples here
    slot.fed = slot.pos = len(prompt)
    slot.generated, slot.last = 1, tokens[0]
    spent = 0.0
    while slot.generated < len(tokens):
        spec.plan([slot], room=512)
        rest = tokens[slot.generated :]
        accepted = 0
        while accepted < min(len(slot.draft), len(rest)) and slot.draft[accepted] == rest[accepted]:
            accepted += 1
        if oracle:  # only what will be accepted, and only where that pays
            paying = accepted and (1 + accepted) / costs(1 + accepted) > 1 / costs(1)
            slot.draft = slot.draft[:accepted] if paying else []
            accepted = len(slot.draft)
        sampled = rest[: accepted + 1]
        ms = costs(1 + len(slot.draft))
        spent += ms
        spec.decoded(1 + len(slot.draft), ms / 1000)
        spec.verified(slot, len(sampled) - 1, sampled)
        slot.generated += len(sampled)
        slot.pos += len(sampled)
        slot.last = sampled[-1]
    spec.ended(slot)
    return (len(tokens) - 1) * costs(1) / spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="the GGUF file whose greedy answers are replayed")
    ap.add_argument("--costs", required=True, help="verify_cost.py's output for --sequences 1, k to 32")
    ap.add_argument("--questions", type=int, default=8, help="questions of each kind past spec_bench's 9")
    ap.add_argument("--max-tokens", type=int, default=120, help="tokens per answer")
    ap.add_argument("--smooth", action="store_true", help="a line through the costs of 2 rows and more")
    ap.add_argument("--answers", help="a file for the captured answers: read if it exists, else written")
    args = ap.parse_args()
    costs = Costs(args.costs, smooth=args.smooth)
    if args.answers and Path(args.answers).exists():
        answers = [tuple(a) for a in json.loads(Path(args.answers).read_text())]
    else:
        answers = capture(args.model, args.questions, args.max_tokens)
        if args.answers:
            Path(args.answers).write_text(json.dumps(answers))
    found: dict[tuple[str, str, str], list[float]] = {}
    for planner, mode in (("auto", "auto"), ("oracle", "ngram")):
        for memory in ("cold", "warm"):
            spec = speculator(mode, costs)
            for answer in answers:
                if memory == "cold":
                    spec = speculator(mode, costs)
                ratio = replay(spec, answer, costs, oracle=planner == "oracle")
                found.setdefault((planner, memory, answer[0]), []).append(ratio)
                if memory == "cold":
                    row = {"planner": planner, "kind": answer[0], "question": answer[1]}
                    print(json.dumps(row | {"ratio": round(ratio, 3)}))
    for (planner, memory, kind), ratios in found.items():
        summary = {"planner": planner, "engine": memory, "kind": kind, "answers": len(ratios)}
        print(json.dumps(summary | {"mean": round(statistics.mean(ratios), 3), "min": round(min(ratios), 3)}))


if __name__ == "__main__":
    main()
