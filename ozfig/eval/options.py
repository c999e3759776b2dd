"""The options of `ozfig eval perplexity | kld | answers`, declared once (flags, help, limits)."""

from __future__ import annotations

from dataclasses import dataclass

from ozfig.options import REQUIRED, Options, option

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, kw_only=True)
class Common(Options):
    gpu_layers: int = option(
        -1, "layers to offload to the GPU: -1 = all when the build supports a GPU, 0 = CPU only", minimum=-1
    )
    threads: int = option(0, "CPU threads (0 = one per core)", minimum=0)
    json: bool = option(False, "print one JSON object instead of text", switch=True)
    no_progress: bool = option(False, "no progress bar on stderr", switch=True)
    log_level: str = option("warning", "logging level", choices=LOG_LEVELS)


@dataclass(frozen=True, kw_only=True)
class Chunking(Common):
    file: str = option(REQUIRED, "UTF-8 text to evaluate on (e.g. wikitext-2 wiki.test.raw)")
    ctx: int = option(2048, "tokens per chunk (llama.cpp's -c)", minimum=4)
    chunks: int | None = option(None, "evaluate at most this many chunks (default: all)", minimum=1)
    batch: int = option(
        2048,
        "tokens per decode (llama.cpp's -b): batch/ctx chunks are decoded together, one sequence each",
        minimum=1,
    )


@dataclass(frozen=True, kw_only=True)
class PerplexityOptions(Chunking):
    model: str = option(REQUIRED, "the GGUF to evaluate")


@dataclass(frozen=True, kw_only=True)
class KldOptions(Chunking):
    base: str = option(REQUIRED, "the reference GGUF (F16, BF16 or Q8_0)")
    model: str = option(REQUIRED, "the GGUF to compare with it")


@dataclass(frozen=True, kw_only=True)
class AnswersOptions(Common):
    model: str = option(REQUIRED, "the GGUF to evaluate")
    data: str = option(REQUIRED, "JSONL file of FineTome-style rows")
    limit: int | None = option(None, "answer only the first N rows", minimum=1)
    max_tokens: int = option(512, "tokens per answer at most", minimum=1)
    temperature: float = option(0.0, "sampling temperature (0 = greedy)")
    seed: int = option(0, "sampling seed of the first row (row i: seed + i)")
    ctx: int = option(4096, "context per answer (prompt + reply)", minimum=16)
    slots: int = option(4, "answers generated together", minimum=1)
    batch: int = option(512, "tokens per decode", minimum=1)
    encoder: str | None = option(
        None,
        "BERTScore encoder: a Hugging Face model id or a local folder (default: BERTScore's English "
        "default, roberta-large)",
    )
    encoder_layers: int | None = option(
        None,
        "encoder layer whose embeddings are compared (default: BERTScore's tuned layer, else the last)",
        minimum=0,
    )
    idf: bool = option(False, "weight tokens by IDF over the references", switch=True)
    rescale_with_baseline: bool = option(False, "rescale with BERTScore's English baseline", switch=True)
    device: str | None = option(None, "torch device of the encoder (default: cuda if available)")
    output: str | None = option(None, "write each row's answer and scores to this JSONL file")
