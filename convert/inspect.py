"""`ozfig inspect FILE.gguf`: what a GGUF holds, read from its header (memory-mapped, no load).

Architecture and sizes, the quantization mix (tensor count and bytes per type), the
tokenizer (model, pre-tokenizer, size, special tokens with their text, add-BOS) and the
chat template. For a LoRA adapter GGUF: its alpha and the adapted tensors.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import gguf

from .errors import InputError
from .gguf_index import read_gguf
from .output import human

_SPECIAL = ("bos", "eos", "eot", "eom", "unknown", "padding", "seperator")


def read_summary(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file.")
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise InputError(f"{path} is not a GGUF file (it does not start with the GGUF magic bytes).")
    big_arrays = ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges")
    try:
        contents = read_gguf(
            path, counted=big_arrays
        )  # gguf's reader takes minutes over Llama 3's vocabulary
    except (ValueError, OSError) as exc:
        raise InputError(f"{path} is a damaged or truncated GGUF file: {exc}") from None
    fields = contents.fields
    arch = str(fields.get("general.architecture", "unknown"))
    mix: Counter[str] = Counter()
    mix_bytes: Counter[str] = Counter()
    n_params = 0
    for t in contents.tensors:
        mix[t.qtype.name] += 1
        mix_bytes[t.qtype.name] += t.nbytes
        n_params += math.prod(t.shape)
    specials: dict[str, Any] = {}
    for kind in _SPECIAL:
        value = fields.get(f"tokenizer.ggml.{kind}_token_id")
        if value is None:
            continue
        specials[kind] = {"id": int(value), "text": contents.token_text.get(int(value))}

    def arch_key(key: str) -> Any:
        return fields.get(f"{arch}.{key}")

    file_type = fields.get("general.file_type")
    try:
        file_type_name = gguf.LlamaFileType(int(file_type)).name if file_type is not None else None
    except ValueError:
        file_type_name = str(file_type)
    return {
        "path": str(path),
        "file_size": os.path.getsize(path),
        "type": fields.get("general.type", "model"),
        "name": fields.get("general.name"),
        "architecture": arch,
        "file_type": file_type_name,
        "parameters": n_params,
        "tensors": len(contents.tensors),
        "quant_mix": {k: {"tensors": mix[k], "bytes": mix_bytes[k]} for k in sorted(mix)},
        "layers": arch_key("block_count"),
        "context_length": arch_key("context_length"),
        "embedding_length": arch_key("embedding_length"),
        "feed_forward_length": arch_key("feed_forward_length"),
        "heads": arch_key("attention.head_count"),
        "kv_heads": arch_key("attention.head_count_kv"),
        "rope_freq_base": arch_key("rope.freq_base"),
        "rope_freqs": any(t.name == "rope_freqs.weight" for t in contents.tensors),
        "tokenizer": {
            "model": fields.get("tokenizer.ggml.model"),
            "pre": fields.get("tokenizer.ggml.pre"),
            "tokens": fields.get("tokenizer.ggml.tokens"),
            "merges": fields.get("tokenizer.ggml.merges"),
            "add_bos": fields.get("tokenizer.ggml.add_bos_token"),
            "special": specials,
        },
        "chat_template": fields.get("tokenizer.chat_template"),
        "adapter": (
            {"type": fields.get("adapter.type"), "alpha": fields.get("adapter.lora.alpha")}
            if fields.get("general.type") == "adapter"
            else None
        ),
        "metadata": {k: v for k, v in fields.items() if not k.startswith("tokenizer.")},
    }


def format_summary(s: dict[str, Any], full_template: bool = False) -> str:
    lines = [f"{s['path']}  ({human(s['file_size'])})"]
    kind = "LoRA adapter" if s["adapter"] else "model"
    lines.append(
        f"  {kind} {s['name'] or '-'!r}, architecture {s['architecture']}, file type {s['file_type']}"
    )
    lines.append(f"  parameters: {s['parameters']:,} in {s['tensors']} tensors")
    if s["adapter"]:
        lines.append(f"  adapter: {s['adapter']['type']}, alpha {s['adapter']['alpha']}")
    if s["layers"] is not None:
        lines.append(
            f"  layers {s['layers']}, embedding {s['embedding_length']}, feed-forward {s['feed_forward_length']}, "
            f"heads {s['heads']} (KV {s['kv_heads']}), context {s['context_length']}"
        )
        rope = f"  RoPE base {s['rope_freq_base']}"
        lines.append(rope + (", llama3 frequency factors (rope_freqs)" if s["rope_freqs"] else ""))
    mix = ", ".join(f"{k} x{v['tensors']} ({human(v['bytes'])})" for k, v in s["quant_mix"].items())
    lines.append(f"  quant mix: {mix}")
    tok = s["tokenizer"]
    if tok["model"]:
        lines.append(
            f"  tokenizer: {tok['model']}/{tok['pre']}, {tok['tokens']} tokens, {tok['merges']} merges, "
            f"add BOS {tok['add_bos']}"
        )
        special = ", ".join(f"{k} {v['id']} {v['text']!r}" for k, v in tok["special"].items())
        if special:
            lines.append(f"  special tokens: {special}")
    template = s["chat_template"]
    if template:
        shown = template if full_template or len(template) <= 400 else template[:400] + " ..."
        lines.append("  chat template:")
        lines.extend("    " + line for line in shown.splitlines())
    elif not s["adapter"]:
        lines.append("  chat template: none")
    return "\n".join(lines)
