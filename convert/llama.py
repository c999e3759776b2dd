"""What is specific to the llama architecture: hyper-parameters, tensor names, Q/K order, RoPE factors.

Hugging Face stores each attention head's Q and K rows as two halves (the rotate-half RoPE
layout); llama.cpp rotates interleaved pairs. `qk_row_order` gives, for each output row, the
source row, so that a block of rows can be gathered straight from the memory map. K uses the
KV head count (grouped-query attention). `llama3_rope_factors` computes the `rope_freqs`
tensor llama.cpp divides each RoPE frequency by, for `rope_type == "llama3"` (Llama 3.1+).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gguf
import numpy as np
import numpy.typing as npt

from .errors import InputError, UnsupportedError

ARCH = gguf.MODEL_ARCH.LLAMA
ARCH_NAME = gguf.MODEL_ARCH_NAMES[ARCH]
HF_ARCHITECTURES = frozenset({"LlamaForCausalLM", "LLaMAForCausalLM"})
SKIPPED_SUFFIXES = (".rotary_emb.inv_freq", ".attention.masked_bias", ".attention.bias")


@dataclass(frozen=True)
class LlamaParams:
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ctx: int | None
    rms_eps: float
    rope_theta: float | None
    rope: dict[str, Any]
    vocab_size: int
    tie_embeddings: bool

    @property
    def rope_type(self) -> str:
        return str(self.rope.get("rope_type") or self.rope.get("type") or "default").lower()

    def projection_shapes(self) -> dict[str, tuple[int, int]]:
        """(rows, columns) of each layer's projection matrix, by its Hugging Face module name."""
        q = self.n_head * self.head_dim
        kv = self.n_head_kv * self.head_dim
        return {
            "q_proj": (q, self.n_embd),
            "k_proj": (kv, self.n_embd),
            "v_proj": (kv, self.n_embd),
            "o_proj": (self.n_embd, q),
            "gate_proj": (self.n_ff, self.n_embd),
            "up_proj": (self.n_ff, self.n_embd),
            "down_proj": (self.n_embd, self.n_ff),
        }


def _rope_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """RoPE settings as one dict: transformers 5 writes `rope_parameters`, older ones `rope_scaling`."""
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    if "rope_theta" not in rope and config.get("rope_theta") is not None:
        rope["rope_theta"] = config["rope_theta"]
    if "rope_type" not in rope and "type" in rope:
        rope["rope_type"] = rope["type"]
    return rope


def check_architecture(config: dict[str, Any], where: str) -> None:
    archs = config.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise InputError(f"{where}/config.json: architectures must be a list of names, not {archs!r}.")
    model_type = config.get("model_type")
    if not (set(archs) & HF_ARCHITECTURES) and not (not archs and model_type == "llama"):
        found = ", ".join(archs) or str(model_type or "unknown")
        raise UnsupportedError(
            f"{where} is a {found} model; ozfig convert handles the llama architecture "
            "(LlamaForCausalLM: Llama 2, 3, 3.1, 3.2 and their fine-tunes)."
        )
    if config.get("quantization_config"):
        quant = config["quantization_config"]
        method = quant.get("quant_method", "some") if isinstance(quant, dict) else "some"
        raise UnsupportedError(
            f"{where} is a {method}-quantized checkpoint. Merging into quantized weights loses quality: "
            "pass the original 16-bit base model (for example meta-llama/Llama-3.1-8B)."
        )


def params_from_config(config: dict[str, Any], where: str) -> LlamaParams:
    check_architecture(config, where)
    try:
        n_head = int(config["num_attention_heads"])
        n_embd = int(config["hidden_size"])
        head_dim_raw = config.get("head_dim")
        head_dim = int(head_dim_raw) if head_dim_raw is not None else n_embd // max(1, n_head)
        rope = _rope_parameters(config)
        params = LlamaParams(
            n_layer=int(config["num_hidden_layers"]),
            n_embd=n_embd,
            n_ff=int(config["intermediate_size"]),
            n_head=n_head,
            n_head_kv=int(config.get("num_key_value_heads") or n_head),
            head_dim=head_dim,
            n_ctx=int(config["max_position_embeddings"]) if config.get("max_position_embeddings") else None,
            rms_eps=float(config.get("rms_norm_eps", 1e-6)),
            rope_theta=float(rope["rope_theta"]) if rope.get("rope_theta") is not None else None,
            rope=rope,
            vocab_size=int(config["vocab_size"]),
            tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise InputError(f"{where}/config.json lacks a llama setting or has a bad value: {exc}") from None
    sizes = {
        "num_hidden_layers": params.n_layer,
        "hidden_size": params.n_embd,
        "intermediate_size": params.n_ff,
        "num_attention_heads": params.n_head,
        "num_key_value_heads": params.n_head_kv,
        "head_dim": params.head_dim,
        "vocab_size": params.vocab_size,
    }
    bad = [f"{k} = {v}" for k, v in sizes.items() if v < 1]
    if bad or not math.isfinite(params.rms_eps) or params.rms_eps <= 0:
        raise InputError(
            f"{where}/config.json has a bad value: {', '.join(bad) or f'rms_norm_eps = {params.rms_eps}'} "
            "(sizes must be at least 1, rms_norm_eps a positive number)."
        )
    if params.rope_type not in ("default", "llama3", "linear"):
        raise UnsupportedError(
            f"{where} uses RoPE scaling {params.rope_type!r}; ozfig convert handles none, 'linear' and 'llama3'."
        )
    if params.n_head % params.n_head_kv:
        raise InputError(
            f"{where}: {params.n_head} attention heads do not split into {params.n_head_kv} KV heads."
        )
    return params


# llama.cpp's name (within a block) of each projection, by its Hugging Face module name
GGUF_PROJECTIONS = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}


def gguf_name(hf_name: str, n_layer: int, _cache: dict[int, gguf.TensorNameMap] = {}) -> str | None:  # noqa: B006
    """llama.cpp's name for a Hugging Face tensor name, or None when llama.cpp has none."""
    tmap = _cache.get(n_layer)
    if tmap is None:
        tmap = _cache[n_layer] = gguf.get_tensor_name_map(ARCH, n_layer)
    result: str | None = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    return result


def permute_heads(hf_name: str, params: LlamaParams) -> int | None:
    """The head count for the Q/K row permutation of this tensor, or None."""
    if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
        return params.n_head
    if hf_name.endswith(("k_proj.weight", "k_proj.bias")):
        return params.n_head_kv
    return None


def qk_row_order(n_rows: int, n_heads: int) -> npt.NDArray[np.intp]:
    """Source row of each output row: per head, rows (half, i) become (i, half)."""
    half = n_rows // n_heads // 2
    src = np.arange(n_rows, dtype=np.intp).reshape(n_heads, 2, half)
    return src.transpose(0, 2, 1).reshape(n_rows)


def llama3_rope_factors(rope: dict[str, Any], head_dim: int) -> npt.NDArray[np.float32]:
    """Per-frequency divisors for Llama 3.1's RoPE scaling (one per rotated pair), float32.

    Frequencies with a wavelength shorter than original_context/high_freq_factor keep their
    value (1); longer than original_context/low_freq_factor are divided by `factor`; those
    between are blended smoothly. Computed in float32 in the same steps as llama.cpp's
    converter, so both write the same bits.
    """
    one = np.float32(1.0)
    base = float(rope.get("rope_theta", 10000.0))
    factor = np.float32(rope.get("factor", 8.0))
    low = float(rope.get("low_freq_factor", 1.0))
    high = float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings", 8192))
    exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    # the power correctly rounded to float32, then reciprocals times the scalar, as torch does
    powers = np.power(base, exponents.astype(np.float64)).astype(np.float32)
    freqs = one / powers
    out = np.empty(len(freqs), dtype=np.float32)
    for i, freq in enumerate(freqs):
        wavelen = (one / freq) * np.float32(2 * math.pi)
        if wavelen < old_ctx / high:
            out[i] = one
        elif wavelen > old_ctx / low:
            out[i] = factor
        else:
            smooth = ((one / wavelen) * np.float32(old_ctx) - np.float32(low)) / np.float32(high - low)
            out[i] = one / ((one - smooth) / factor + smooth)
    return out
