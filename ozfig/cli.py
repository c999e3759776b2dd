"""The `ozfig` command: one subcommand per job (serve, convert, inspect, eval).

Each package that owns a job has a `cli` module with `register(subparsers)`; the function
it sets as `run` returns the exit code. Errors of ozfig's own types are printed as one
short paragraph, without a traceback.
"""

# llama_cpp must be imported before numpy (or anything importing it): on the GPU machine's
# image, the other order made model loading crash inside llama.cpp.
import ozfig.llama.backend  # noqa: F401, I001  (imports llama_cpp: the order matters, see above)

import argparse
import logging
import sys
from collections.abc import Sequence

from ozfig import __version__
from ozfig.errors import OzfigError

COMMAND_MODULES = ("server.cli", "convert.cli", "ozfig.eval.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ozfig",
        description="Serve a fine-tuned Llama GGUF with fresh web snippets, and turn a LoRA fine-tune into that GGUF.",
    )
    parser.add_argument("--version", action="version", version=f"ozfig {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except OzfigError as exc:
        print(f"ozfig: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ozfig: interrupted", file=sys.stderr)
        return 130


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    raise SystemExit(main())
