"""`ozfig eval perplexity | kld | answers`: the command line of the evaluation tools."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Formatter = argparse.ArgumentDefaultsHelpFormatter


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {raw!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gpu-layers",
        type=_int_at_least(-1),
        default=-1,
        help="layers to offload to the GPU: -1 = all when the build supports a GPU, 0 = CPU only",
    )
    parser.add_argument("--threads", type=_int_at_least(0), default=0, help="CPU threads (0 = one per core)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])


def _chunking(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file", required=True, help="UTF-8 text to evaluate on (e.g. wikitext-2 wiki.test.raw)"
    )
    parser.add_argument(
        "--ctx", type=_int_at_least(4), default=2048, help="tokens per chunk (llama.cpp's -c)"
    )
    parser.add_argument(
        "--chunks",
        type=_int_at_least(1),
        default=None,
        help="evaluate at most this many chunks (default: all)",
    )
    parser.add_argument(
        "--batch",
        type=_int_at_least(1),
        default=2048,
        help="tokens per decode (llama.cpp's -b): batch/ctx chunks are decoded together, one sequence each",
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "eval",
        help="evaluate a GGUF: perplexity, KL divergence against another quant, answer quality",
        description="Evaluate a GGUF the way llama.cpp's perplexity tool and BERTScore do.",
    )
    evals = parser.add_subparsers(dest="eval_command", metavar="EVAL")
    evals.required = True

    ppl = evals.add_parser(
        "perplexity",
        help="perplexity over a text, exactly as llama-perplexity computes it",
        description="Perplexity over a text, computed as llama.cpp's llama-perplexity does: chunks of --ctx "
        "tokens starting with BOS, the second half of each scored; prints the running PPL per chunk and "
        "PPL = x +/- y.",
        formatter_class=Formatter,
    )
    ppl.add_argument("--model", required=True, help="the GGUF to evaluate")
    _chunking(ppl)
    _common(ppl)
    ppl.set_defaults(run=run_perplexity)

    kld = evals.add_parser(
        "kld",
        help="KL divergence of a quantized GGUF against its base (e.g. F16)",
        description="Compare a quantized GGUF with a base GGUF of the same model over a text: KL divergence "
        "(mean, percentiles), top-token agreement, PPL of both and their ratio.",
        formatter_class=Formatter,
    )
    kld.add_argument("--base", required=True, help="the reference GGUF (F16, BF16 or Q8_0)")
    kld.add_argument("--model", required=True, help="the GGUF to compare with it")
    _chunking(kld)
    _common(kld)
    kld.set_defaults(run=run_kld)

    ans = evals.add_parser(
        "answers",
        help="answer FineTome-style rows with the server's engine and score them with BERTScore",
        description="Answer each JSONL row ({'conversations': [{'from': 'human'|'gpt', 'value': ...}]}) with "
        "the model's chat template and ozfig's serving engine, then score each answer against the last "
        "'gpt' turn with BERTScore (needs ozfig[eval]).",
        formatter_class=Formatter,
    )
    ans.add_argument("--model", required=True, help="the GGUF to evaluate")
    ans.add_argument("--data", required=True, help="JSONL file of FineTome-style rows")
    ans.add_argument("--limit", type=_int_at_least(1), default=None, help="answer only the first N rows")
    ans.add_argument("--max-tokens", type=_int_at_least(1), default=512, help="tokens per answer at most")
    ans.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (0 = greedy)")
    ans.add_argument("--seed", type=int, default=0, help="sampling seed of the first row (row i: seed + i)")
    ans.add_argument(
        "--ctx", type=_int_at_least(16), default=4096, help="context per answer (prompt + reply)"
    )
    ans.add_argument("--slots", type=_int_at_least(1), default=4, help="answers generated together")
    ans.add_argument("--batch", type=_int_at_least(1), default=512, help="tokens per decode")
    ans.add_argument(
        "--encoder",
        default=None,
        help="BERTScore encoder: a Hugging Face model id or a local folder (default: BERTScore's English "
        "default, roberta-large)",
    )
    ans.add_argument(
        "--encoder-layers",
        type=_int_at_least(0),
        default=None,
        help="encoder layer whose embeddings are compared (default: BERTScore's tuned layer, else the last)",
    )
    ans.add_argument("--idf", action="store_true", help="weight tokens by IDF over the references")
    ans.add_argument(
        "--rescale-with-baseline", action="store_true", help="rescale with BERTScore's English baseline"
    )
    ans.add_argument(
        "--device", default=None, help="torch device of the encoder (default: cuda if available)"
    )
    ans.add_argument("--output", default=None, help="write each row's answer and scores to this JSONL file")
    _common(ans)
    ans.set_defaults(run=run_answers)


# --- shared helpers ---------------------------------------------------------------------


def _setup(args: argparse.Namespace) -> None:
    from ozfig.cli import setup_logging

    setup_logging(args.log_level)


@contextmanager
def _progress(args: argparse.Namespace, total: int, unit: str, desc: str) -> Iterator[Any]:
    from tqdm import tqdm

    # disable=None: a bar only when stderr is a terminal
    bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=True if args.no_progress else None)
    try:
        yield bar
    finally:
        bar.close()


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.json:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stdout)


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# --- perplexity -------------------------------------------------------------------------


def run_perplexity(args: argparse.Namespace) -> int:
    _setup(args)
    from ozfig.llama.model import LlamaModel

    from .chunks import ChunkPlan
    from .data import read_text
    from .perplexity import perplexity

    text = read_text(args.file)
    model = LlamaModel(args.model, gpu_layers=args.gpu_layers)
    try:
        with _progress(args, 0, "chunk", "perplexity") as bar:

            def on_plan(plan: ChunkPlan, n_tokens: int) -> None:
                bar.reset(total=plan.n_chunk)
                _say(
                    args,
                    f"{model.path}: {n_tokens} tokens, {plan.n_chunk} chunks of {plan.ctx}, "
                    f"{plan.n_seq} per decode, {model.gpu_layers} layers on the GPU",
                )

            def on_chunk(done: int, ppl: float) -> None:
                bar.update(1)
                bar.set_postfix(ppl=f"{ppl:.4f}")
                _say(args, f"[{done}]{ppl:.4f}")

            result = perplexity(
                model,
                text,
                ctx=args.ctx,
                chunks=args.chunks,
                batch=args.batch,
                threads=args.threads,
                on_plan=on_plan,
                on_chunk=on_chunk,
            )
    finally:
        model.close()
    if args.json:
        _print_json({"model": args.model, "file": args.file, **result.as_dict()})
    else:
        print(f"PPL = {result.ppl:.4f} +/- {result.ppl_error:.5f}")
    return 0


# --- kld --------------------------------------------------------------------------------


def _kld_report(summary: dict[str, Any]) -> list[str]:
    def pm(key: str, scale: float = 1.0, digits: int = 6, unit: str = "") -> str:
        v = summary[key]
        return f"{scale * v['value']:.{digits}f} ± {scale * v['error']:.{digits}f}{unit}"

    lines = [
        f"Mean PPL(Q)                : {pm('ppl_model')}",
        f"Mean PPL(base)             : {pm('ppl_base')}",
        f"Mean ln(PPL(Q)/PPL(base))  : {pm('ln_ppl_ratio')}",
        f"Mean PPL(Q)/PPL(base)      : {pm('ppl_ratio')}",
        f"Mean    KLD: {pm('kld_mean')}",
        f"Maximum KLD: {summary['kld_max']:.6f}",
    ]
    for p, value in summary["kld_percentiles"].items():
        label = "Median " if p == "50" else f"{float(p):4.1f}%  "
        lines.append(f"{label} KLD: {value:.6f}")
    lines += [
        f"Minimum KLD: {summary['kld_min']:.6f}",
        f"Mean    Δp: {pm('delta_p_mean', 100.0, 3, ' %')}",
        f"RMS     Δp: {pm('delta_p_rms', 100.0, 3, ' %')}",
        f"Same top p: {pm('same_top', 100.0, 3, ' %')}",
    ]
    return lines


def run_kld(args: argparse.Namespace) -> int:
    _setup(args)
    from ozfig.llama.model import LlamaModel

    from .chunks import ChunkPlan
    from .data import read_text
    from .kld import kl_divergence

    text = read_text(args.file)
    base = LlamaModel(args.base, gpu_layers=args.gpu_layers)
    try:
        model = LlamaModel(args.model, gpu_layers=args.gpu_layers)
        try:
            with _progress(args, 0, "chunk", "kld") as bar:

                def on_plan(plan: ChunkPlan, n_tokens: int) -> None:
                    bar.reset(total=plan.n_chunk)
                    _say(args, f"{n_tokens} tokens, {plan.n_chunk} chunks of {plan.ctx}")

                def on_chunk(done: int, kld: float, same_top: float) -> None:
                    bar.update(1)
                    bar.set_postfix(kld=f"{kld:.5f}", same_top=f"{100 * same_top:.2f}%")
                    _say(args, f"[{done}] KLD {kld:.6f}  same top {100 * same_top:.3f}%")

                result = kl_divergence(
                    base,
                    model,
                    text,
                    ctx=args.ctx,
                    chunks=args.chunks,
                    batch=args.batch,
                    threads=args.threads,
                    on_plan=on_plan,
                    on_chunk=on_chunk,
                )
        finally:
            model.close()
    finally:
        base.close()
    summary = result.summary()
    if args.json:
        _print_json({"base": args.base, "model": args.model, "file": args.file, **summary})
    else:
        for line in _kld_report(summary):
            print(line)
    return 0


# --- answers ----------------------------------------------------------------------------


def run_answers(args: argparse.Namespace) -> int:
    _setup(args)
    from ozfig.llama.model import LlamaModel

    from .answers import GenerationSettings, formatter_for, generate_answers
    from .bertscore import bert_scores, default_encoder, encoder_layers
    from .data import load_examples

    examples = load_examples(args.data, args.limit)
    settings = GenerationSettings(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        seed=args.seed,
        ctx=args.ctx,
        slots=args.slots,
        batch=args.batch,
        threads=args.threads,
    )
    model = LlamaModel(args.model, gpu_layers=args.gpu_layers)
    try:
        formatter_for(model)  # no chat template: fail before anything slow
        # without ozfig[eval], or with an unknown encoder, fail here rather than after generating
        encoder = args.encoder or default_encoder()
        layers = args.encoder_layers if args.encoder_layers is not None else encoder_layers(encoder)
        with _progress(args, len(examples), "answer", "answers") as bar:
            answers = generate_answers(model, examples, settings, on_answer=lambda: bar.update(1))
    finally:
        model.close()
    references = [e.reference for e in examples]
    with _progress(args, len(examples), "pair", "BERTScore") as bar:
        scores = bert_scores(
            answers,
            references,
            encoder=encoder,
            num_layers=layers,
            idf=args.idf,
            rescale_with_baseline=args.rescale_with_baseline,
            device=args.device,
            on_progress=bar.update,
        )
    rows = [
        {
            "line": e.line,
            "reference": e.reference,
            "answer": a,
            "precision": p,
            "recall": r,
            "f1": f,
        }
        for e, a, p, r, f in zip(examples, answers, scores.precision, scores.recall, scores.f1, strict=True)
    ]
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {"model": args.model, "data": args.data, "rows": len(rows), **scores.summary()}
    if args.json:
        _print_json({**summary, "answers": rows})
    else:
        print(f"{len(rows)} answers from {args.model}, scored with BERTScore")
        print(f"encoder: {scores.encoder} (layer {scores.num_layers}, idf {scores.idf})")
        print(f"P = {summary['precision']:.4f}  R = {summary['recall']:.4f}  F1 = {summary['f1']:.4f}")
    return 0
