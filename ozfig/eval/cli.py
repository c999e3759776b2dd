"""`ozfig eval perplexity | kld | answers`: the command line of the evaluation tools."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ozfig.options import add_options, from_sources

from .options import AnswersOptions, Chunking, Common, KldOptions, PerplexityOptions

if TYPE_CHECKING:
    from .chunks import ChunkSettings


def _add(
    evals: Any, name: str, cls: type[Common], run: Callable[[Any], int], *, help: str, description: str
) -> None:
    parser = evals.add_parser(name, help=help, description=description)
    add_options(parser, cls)
    parser.set_defaults(run=lambda args: run(from_sources(cls, args)))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "eval",
        help="evaluate a GGUF: perplexity, KL divergence against another quant, answer quality",
        description="Evaluate a GGUF the way llama.cpp's perplexity tool and BERTScore do.",
    )
    evals = parser.add_subparsers(dest="eval_command", metavar="EVAL")
    evals.required = True
    _add(
        evals,
        "perplexity",
        PerplexityOptions,
        run_perplexity,
        help="perplexity over a text, exactly as llama-perplexity computes it",
        description="Perplexity over a text, computed as llama.cpp's llama-perplexity does: chunks of --ctx "
        "tokens starting with BOS, the second half of each scored; prints the running PPL per chunk and "
        "PPL = x +/- y.",
    )
    _add(
        evals,
        "kld",
        KldOptions,
        run_kld,
        help="KL divergence of a quantized GGUF against its base (e.g. F16)",
        description="Compare a quantized GGUF with a base GGUF of the same model over a text: KL divergence "
        "(mean, percentiles), top-token agreement, PPL of both and their ratio.",
    )
    _add(
        evals,
        "answers",
        AnswersOptions,
        run_answers,
        help="answer FineTome-style rows with the server's engine and score them with BERTScore",
        description="Answer each JSONL row ({'conversations': [{'from': 'human'|'gpt', 'value': ...}]}) with "
        "the model's chat template and ozfig's serving engine, then score each answer against the last "
        "'gpt' turn with BERTScore (needs ozfig[eval]).",
    )


# --- shared helpers ---------------------------------------------------------------------


def _setup(args: Common) -> None:
    from ozfig.cli import setup_logging

    setup_logging(args.log_level)


@contextmanager
def _progress(args: Common, total: int, unit: str, desc: str) -> Iterator[Any]:
    from tqdm import tqdm

    # disable=None: a bar only when stderr is a terminal
    bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=True if args.no_progress else None)
    try:
        yield bar
    finally:
        bar.close()


def _say(args: Common, line: str) -> None:
    if not args.json:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stdout)


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _chunk_settings(args: Chunking) -> ChunkSettings:
    from .chunks import ChunkSettings

    return ChunkSettings(ctx=args.ctx, chunks=args.chunks, batch=args.batch, threads=args.threads)


# --- perplexity -------------------------------------------------------------------------


def run_perplexity(args: PerplexityOptions) -> int:
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

            result = perplexity(model, text, _chunk_settings(args), on_plan=on_plan, on_chunk=on_chunk)
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


def run_kld(args: KldOptions) -> int:
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

                settings = _chunk_settings(args)
                result = kl_divergence(base, model, text, settings, on_plan=on_plan, on_chunk=on_chunk)
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


def run_answers(args: AnswersOptions) -> int:
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
