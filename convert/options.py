"""The options of `ozfig convert` and `ozfig inspect`, declared once (flags, help, limits).

`ConvertOptions` is also what `convert.pipeline.convert` takes; `progress` and `log_level`
concern the command only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ozfig.options import REQUIRED, Options, option

HELP_QUANT = (
    "Output type. Quantized types go through llama.cpp's quantizer from an F16 intermediate: Q4_K_M, Q4_K_S, "
    "Q5_K_M, Q5_K_S, Q6_K, Q8_0; float types are written directly: F16, BF16, F32. "
    "Default Q4_K_M (F16 with --adapter-only, which takes F16, BF16 or F32)."
)
HUB = "DIR_OR_HUB_ID"


@dataclass(kw_only=True)
class ConvertOptions(Options):
    base: str = option(REQUIRED, "base model: folder or Hub id", metavar=HUB)
    out: Path = option(REQUIRED, "the GGUF file to write", metavar="FILE.gguf")
    adapter: str | None = option(None, "PEFT LoRA adapter: folder or Hub id (optional)", metavar=HUB)
    tokenizer: str | None = option(
        None,
        "take the tokenizer files from here (default: the adapter's, if it has them, else the base's)",
        metavar=HUB,
    )
    # None: Q4_K_M for a model, F16 for --adapter-only
    quant: str | None = option(None, HELP_QUANT, metavar="TYPE", parse=str.upper)
    adapter_only: bool = option(
        False,
        "write the LoRA as a llama.cpp adapter GGUF (for `ozfig serve --lora`) instead of merging it",
        switch=True,
    )
    force: bool = option(False, "replace --out if it exists", switch=True)
    threads: int = option(0, "quantizer threads (0 = all cores)", minimum=0, metavar="N")
    revision: str | None = option(None, "Hub revision (branch, tag or commit) of --base")
    name: str | None = option(
        None, "general.name written into the GGUF (default: the adapter's or base's name)"
    )
    verify: bool = option(True, "skip the checks after writing", flag="--no-verify", switch=True)
    progress: bool = option(True, "no progress bars", flag="--no-progress", switch=True)
    log_level: str = option("warning", "logging level", choices=("debug", "info", "warning", "error"))


@dataclass(frozen=True, kw_only=True)
class InspectOptions(Options):
    file: Path = option(REQUIRED, "the GGUF file to show", flag="file", metavar="FILE.gguf")
    json: bool = option(False, "print everything as JSON", switch=True)
    template: bool = option(False, "print the whole chat template", switch=True)
