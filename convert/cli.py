"""`ozfig convert` and `ozfig inspect`."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ozfig.options import add_options, from_sources

from .options import ConvertOptions, InspectOptions


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "convert",
        help="merge a PEFT LoRA into a Llama checkpoint and write a (quantized) GGUF",
        description=(
            "Turn a Hugging Face Llama checkpoint, optionally with a PEFT LoRA fine-tune merged into it, into a "
            "GGUF file for llama.cpp (and `ozfig serve`), or write the LoRA alone as a llama.cpp adapter GGUF. "
            "Nothing appears at --out unless the whole conversion succeeds."
        ),
        epilog="Example: ozfig convert --base meta-llama/Llama-3.1-8B --adapter ./lora --quant Q4_K_M --out ozfig.gguf",
    )
    add_options(p, ConvertOptions)
    p.set_defaults(run=lambda args: run_convert(from_sources(ConvertOptions, args)))

    q = sub.add_parser(
        "inspect",
        help="show what a GGUF file holds",
        description="Architecture, sizes, quantization mix, tokenizer and chat template of a GGUF file.",
    )
    add_options(q, InspectOptions)
    q.set_defaults(run=lambda args: run_inspect(from_sources(InspectOptions, args)))


def run_convert(opts: ConvertOptions) -> int:
    from ozfig.cli import setup_logging

    from .output import human
    from .pipeline import convert
    from .report import Reporter

    setup_logging(opts.log_level)
    report = Reporter(progress=opts.progress, say=lambda msg: print(msg, file=sys.stderr, flush=True))
    result = convert(opts, report)
    print(
        f"wrote {result.path} ({result.kind}, {result.quant}, {result.tensors} tensors, {human(result.size)}) "
        f"in {result.seconds:.1f} s"
    )
    return 0


def run_inspect(args: InspectOptions) -> int:
    from .inspect import format_summary, read_summary

    summary = read_summary(args.file)
    text = json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary, args.template)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `ozfig inspect X | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
