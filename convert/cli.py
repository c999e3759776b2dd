"""`ozfig convert` and `ozfig inspect`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP_QUANT = (
    "Output type. Quantized types go through llama.cpp's quantizer from an F16 intermediate: Q4_K_M, Q4_K_S, "
    "Q5_K_M, Q5_K_S, Q6_K, Q8_0; float types are written directly: F16, BF16, F32. "
    "Default Q4_K_M (F16 with --adapter-only, which takes F16, BF16 or F32)."
)


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
    p.add_argument("--base", required=True, metavar="DIR_OR_HUB_ID", help="base model: folder or Hub id")
    p.add_argument(
        "--adapter", metavar="DIR_OR_HUB_ID", help="PEFT LoRA adapter: folder or Hub id (optional)"
    )
    p.add_argument("--out", required=True, type=Path, metavar="FILE.gguf", help="the GGUF file to write")
    p.add_argument("--quant", type=str.upper, metavar="TYPE", help=HELP_QUANT)
    p.add_argument(
        "--adapter-only",
        action="store_true",
        help="write the LoRA as a llama.cpp adapter GGUF (for `ozfig serve --lora`) instead of merging it",
    )
    p.add_argument(
        "--tokenizer",
        metavar="DIR_OR_HUB_ID",
        help="take the tokenizer files from here (default: the adapter's, if it has them, else the base's)",
    )
    p.add_argument(
        "--name", help="general.name written into the GGUF (default: the adapter's or base's name)"
    )
    p.add_argument("--revision", help="Hub revision (branch, tag or commit) of --base")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="quantizer threads (0 = all cores)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the checks after writing")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    p.set_defaults(run=run_convert)

    q = sub.add_parser(
        "inspect",
        help="show what a GGUF file holds",
        description="Architecture, sizes, quantization mix, tokenizer and chat template of a GGUF file.",
    )
    q.add_argument("file", type=Path, metavar="FILE.gguf")
    q.add_argument("--json", action="store_true", help="print everything as JSON")
    q.add_argument("--template", action="store_true", help="print the whole chat template")
    q.set_defaults(run=run_inspect)


def run_convert(args: argparse.Namespace) -> int:
    from ozfig.cli import setup_logging

    from .output import human
    from .pipeline import ConvertOptions, Reporter, convert

    setup_logging(args.log_level)
    if args.threads < 0:
        print("ozfig: error: --threads must be 0 or more", file=sys.stderr)
        return 2
    opts = ConvertOptions(
        base=args.base,
        out=args.out,
        adapter=args.adapter,
        tokenizer=args.tokenizer,
        quant=args.quant,
        adapter_only=args.adapter_only,
        force=args.force,
        threads=args.threads,
        revision=args.revision,
        name=args.name,
        verify=args.verify,
    )
    report = Reporter(progress=args.progress, say=lambda msg: print(msg, file=sys.stderr, flush=True))
    result = convert(opts, report)
    print(
        f"wrote {result.path} ({result.kind}, {result.quant}, {result.tensors} tensors, {human(result.size)}) "
        f"in {result.seconds:.1f} s"
    )
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from .inspect import format_summary, read_summary

    summary = read_summary(args.file)
    text = json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary, args.template)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `ozfig inspect X | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
