"""The settings of how answers are decoded (speculation, flash attention): a part of
`settings.Settings` (its first fields), kept apart so that each module stays small."""

from __future__ import annotations

from dataclasses import dataclass

from ozfig.options import Options, option


@dataclass(frozen=True)
class SpeculationSettings(Options):
    speculative: str = option(
        "auto",
        "Speculative decoding: each answer proposes the tokens that followed its last words earlier in "
        "its prompt or answer (quoted sources), or that --draft-model predicts, and checks them in the "
        "same decode. auto (as many as pay off on this machine and batch, per answer; the draft model's "
        "when one is given), ngram (always), draft (always, --draft-model), off.",
        choices=("auto", "ngram", "draft", "off"),
    )
    draft_model: str = option(
        "",
        "A smaller model of the same vocabulary that proposes tokens (e.g. Llama 3.2 1B Instruct for "
        "Llama 3.1 8B): a local GGUF path or OWNER/REPO/FILE.gguf; its vocabulary is checked at start.",
        metavar="PATH_OR_HUB_FILE",
        path=True,
    )
    draft_max: int = option(
        32, "The most tokens an answer proposes per decode step (--speculative).", minimum=1, maximum=256
    )
    flash_attention: str = option(
        "auto",
        "llama.cpp's flash attention: auto (llama.cpp's choice: on), on, off. Off decodes long contexts "
        "faster on a CPU, but greedy answers then change slightly with speculation and prompt reuse.",
        choices=("auto", "on", "off"),
    )
