"""Tiny Llama-3.1-style checkpoints and PEFT adapters, built on disk by the convert tests.

The base is a `LlamaForCausalLM` folder as Hugging Face writes it: bf16 safetensors split
into two shards with an index, `config.json` with Llama 3.1's `rope_scaling` (rope_type
llama3) and grouped-query attention, `generation_config.json`, and a small byte-level BPE
`tokenizer.json` trained here with Llama 3's pre-tokenizer (split regex + ByteLevel,
ignore_merges) and Llama 3's special tokens. The adapter is a PEFT LoRA folder in PEFT's
exact naming (`base_model.model.<module>.lora_A.weight`, `adapter_config.json`), rsLoRA
r=16 alpha=16 on the 7 projection modules, with its own tokenizer files: ChatML template,
end-of-turn `<|im_end|>` mapped onto the base's end-of-text id, like the original ozfig.

Safetensors files are written by hand (bf16 is not a numpy dtype); no torch is needed to
build. `merged_state_dict` computes the merged weights independently with torch, for the
reference forward pass.
"""

from __future__ import annotations

import copy
import json
import math
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LLAMA3_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
BASE_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
]
# the fine-tune renames two of the base's special tokens in place (no new rows)
CHATML_RENAMES = {"<|end_of_text|>": "<|im_end|>", "<|reserved_special_token_0|>": "<|im_start|>"}
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Llama 3.1's real rope_scaling
LLAMA31_ROPE = {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3",
}
CHECK_TEXT = (
    "<|im_start|>user\nWhat's 12345 + 678.9? Write `def add(a, b): return a+b` — naïve café, "
    "日本語, emoji 🦙🚀 and tabs\t\tplus   spaces.\n\n<|im_end|>\n<|im_start|>assistant\n"
)


@dataclass(frozen=True)
class Shape:
    hidden: int = 256
    intermediate: int = 512
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vocab: int = 768  # rows; ids past the tokenizer's are unused padding
    max_positions: int = 512
    rope_theta: float = 500000.0
    rope_scaling: dict[str, Any] = field(
        default_factory=lambda: {**LLAMA31_ROPE, "original_max_position_embeddings": 32}
    )

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


# --- safetensors -----------------------------------------------------------------------


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def save_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """Write {name: (dtype, array)}; dtype is the safetensors name (BF16 arrays hold uint16 bits)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        dtype, arr = tensors[name]
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for blob in blobs:
            fh.write(blob)


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """float32 copies of every tensor (BF16/F16/F32)."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        data = fh.read()
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        buf = data[a:b]
        if e["dtype"] == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(buf, dtype=np.uint16))
        else:
            arr = np.frombuffer(buf, dtype={"F16": np.float16, "F32": np.float32}[e["dtype"]]).astype(
                np.float32
            )
        out[name] = arr.reshape(e["shape"])
    return out


# --- tokenizer -------------------------------------------------------------------------


def _corpus(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [
        "the",
        "model",
        "answers",
        "with",
        "fresh",
        "web",
        "snippets",
        "and",
        "a",
        "fine",
        "tuned",
        "llama",
        "that",
        "speaks",
        "chat",
        "markup",
        "python",
        "code",
        "returns",
        "values",
        "numbers",
        "like",
        "2024",
        "and",
        "3.14",
        "naive",
        "cafe",
        "tokyo",
        "def",
        "class",
        "import",
        "while",
        "for",
        "if",
        "else",
        "print",
        "hello",
        "world",
        "assistant",
        "user",
        "system",
        "helpful",
        "detailed",
        "conversation",
    ]
    lines = []
    for _ in range(400):
        n = rng.randint(4, 14)
        s = " ".join(rng.choice(words) for _ in range(n))
        if rng.random() < 0.3:
            s = s.capitalize() + "."
        if rng.random() < 0.2:
            s += f" {rng.randint(0, 99999)}"
        if rng.random() < 0.15:
            s = f"def f{rng.randint(0, 9)}(x):\n    return x + {rng.randint(1, 9)}\n"
        lines.append(s)
    lines.append("I've been told he's there, 're you sure? 'M not sure I'll make it, 'D you like tea?")
    return lines


def build_tokenizer_json(n_merges_vocab: int = 620) -> dict[str, Any]:
    """A byte-level BPE tokenizer.json with Llama 3's pre-tokenizer and special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=n_merges_vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    tok.train_from_iterator(_corpus(), trainer)
    tok.add_special_tokens(BASE_SPECIALS)
    bos = BASE_SPECIALS[0]
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{bos}:0 $A:0",
                pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                special_tokens=[(bos, tok.token_to_id(bos))],
            ),
        ]
    )
    data: dict[str, Any] = json.loads(tok.to_str())
    return data


def chatml_tokenizer_json(base: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for entry in data["added_tokens"]:
        entry["content"] = CHATML_RENAMES.get(entry["content"], entry["content"])
    return data


def tokenizer_config(tok_json: dict[str, Any], eos: str, template: str | None) -> dict[str, Any]:
    decoder = {
        str(e["id"]): {
            "content": e["content"],
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for e in tok_json["added_tokens"]
    }
    cfg: dict[str, Any] = {
        "added_tokens_decoder": decoder,
        "bos_token": "<|begin_of_text|>",
        "clean_up_tokenization_spaces": True,
        "eos_token": eos,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    if template is not None:
        cfg["chat_template"] = template
    return cfg


# --- base checkpoint -------------------------------------------------------------------


def base_config(
    shape: Shape, tok_json: dict[str, Any], architecture: str = "LlamaForCausalLM"
) -> dict[str, Any]:
    ids = {e["content"]: e["id"] for e in tok_json["added_tokens"]}
    return {
        "architectures": [architecture],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": ids["<|begin_of_text|>"],
        "eos_token_id": ids["<|end_of_text|>"],
        "hidden_act": "silu",
        "hidden_size": shape.hidden,
        "initializer_range": 0.02,
        "intermediate_size": shape.intermediate,
        "max_position_embeddings": shape.max_positions,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": shape.heads,
        "num_hidden_layers": shape.layers,
        "num_key_value_heads": shape.kv_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": dict(shape.rope_scaling),
        "rope_theta": shape.rope_theta,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": shape.vocab,
    }


def base_weights(shape: Shape, seed: int = 1) -> dict[str, np.ndarray]:
    """float32 values (already bf16-representable) of every base tensor."""
    rng = np.random.default_rng(seed)
    h, f, hd = shape.hidden, shape.intermediate, shape.head_dim

    def mat(rows: int, cols: int, std: float) -> np.ndarray:
        return bf16_bits_to_f32(to_bf16_bits(rng.normal(0, std, (rows, cols)).astype(np.float32)))

    def norm(n: int) -> np.ndarray:
        return bf16_bits_to_f32(to_bf16_bits((1.0 + rng.normal(0, 0.1, n)).astype(np.float32)))

    w: dict[str, np.ndarray] = {
        "model.embed_tokens.weight": mat(shape.vocab, h, 1.0),
        "model.norm.weight": norm(h),
        "lm_head.weight": mat(shape.vocab, h, 1.0 / math.sqrt(h)),
    }
    s = 1.0 / math.sqrt(h)
    for i in range(shape.layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(h)
        w[p + "post_attention_layernorm.weight"] = norm(h)
        w[p + "self_attn.q_proj.weight"] = mat(shape.heads * hd, h, s * 2)
        w[p + "self_attn.k_proj.weight"] = mat(shape.kv_heads * hd, h, s * 2)
        w[p + "self_attn.v_proj.weight"] = mat(shape.kv_heads * hd, h, s)
        w[p + "self_attn.o_proj.weight"] = mat(h, shape.heads * hd, s)
        w[p + "mlp.gate_proj.weight"] = mat(f, h, s)
        w[p + "mlp.up_proj.weight"] = mat(f, h, s)
        w[p + "mlp.down_proj.weight"] = mat(h, f, 1.0 / math.sqrt(f))
    return w


def write_checkpoint(
    folder: Path, config: dict[str, Any], weights: dict[str, np.ndarray], dtype: str = "BF16", shards: int = 2
) -> None:
    """A Hugging Face model folder: config, safetensors (sharded with an index when shards > 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))

    def stored(a: np.ndarray) -> tuple[str, np.ndarray]:
        if dtype == "BF16":
            return ("BF16", to_bf16_bits(a))
        return (dtype, a.astype({"F16": np.float16, "F32": np.float32}[dtype]))

    names = sorted(weights)
    if shards <= 1:
        save_safetensors(folder / "model.safetensors", {n: stored(weights[n]) for n in names})
        return
    weight_map = {}
    per = math.ceil(len(names) / shards)
    for k in range(shards):
        part = names[k * per : (k + 1) * per]
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        save_safetensors(folder / fname, {n: stored(weights[n]) for n in part})
        weight_map.update({n: fname for n in part})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def write_tokenizer(folder: Path, tok_json: dict[str, Any], eos: str, template: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(tok_json, ensure_ascii=False))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(tok_json, eos, template), indent=2)
    )
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": eos}, indent=2)
    )


# --- adapter ---------------------------------------------------------------------------


def adapter_config(**overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": "unsloth/meta-llama-3.1-8b-bnb-4bit",
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": 16,
        "lora_dropout": 0,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": 16,
        "rank_pattern": {},
        "revision": None,
        "target_modules": list(PROJECTIONS),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": True,
    }
    cfg.update(overrides)
    return cfg


def module_shapes(shape: Shape) -> dict[str, tuple[int, int]]:
    h, f, hd = shape.hidden, shape.intermediate, shape.head_dim
    return {
        "self_attn.q_proj": (shape.heads * hd, h),
        "self_attn.k_proj": (shape.kv_heads * hd, h),
        "self_attn.v_proj": (shape.kv_heads * hd, h),
        "self_attn.o_proj": (h, shape.heads * hd),
        "mlp.gate_proj": (f, h),
        "mlp.up_proj": (f, h),
        "mlp.down_proj": (h, f),
    }


def adapter_weights(
    shape: Shape, rank: int = 16, seed: int = 2, ranks: dict[str, int] | None = None, std: float = 0.05
) -> dict[str, np.ndarray]:
    """lora_A / lora_B for every projection of every layer (B is not zero: the merge must show)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for i in range(shape.layers):
        for mod, (rows, cols) in module_shapes(shape).items():
            r = (ranks or {}).get(mod.split(".")[-1], rank)
            key = f"base_model.model.model.layers.{i}.{mod}"
            out[f"{key}.lora_A.weight"] = rng.normal(0, 1.0 / math.sqrt(cols), (r, cols)).astype(np.float32)
            out[f"{key}.lora_B.weight"] = rng.normal(0, std, (rows, r)).astype(np.float32)
    return out


def write_adapter(
    folder: Path,
    config: dict[str, Any],
    weights: dict[str, np.ndarray],
    tok_json: dict[str, Any] | None = None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    save_safetensors(folder / "adapter_model.safetensors", {n: ("F32", a) for n, a in weights.items()})
    if tok_json is not None:
        write_tokenizer(folder, tok_json, eos="<|im_end|>", template=CHATML_TEMPLATE)


# --- independent reference merge (torch) -----------------------------------------------


def _pattern(patterns: dict[str, Any], module: str, default: Any) -> Any:
    import re

    for key, value in patterns.items():
        if re.match(rf"(.*\.)?{key}$", module):
            return value
    return default


def merged_state_dict(base: dict[str, np.ndarray], adapter_dir: Path) -> dict[str, Any]:
    """W + scale * B @ A for every LoRA pair, in float32 torch tensors (PEFT's formula, written here)."""
    import torch

    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    lora = load_safetensors(adapter_dir / "adapter_model.safetensors")
    state = {k: torch.from_numpy(v.copy()) for k, v in base.items()}
    for name in lora:
        if name.endswith(".lora_A.weight"):
            module = name[len("base_model.model.") : -len(".lora_A.weight")]
            b_name = name.replace("lora_A", "lora_B")
        elif name.endswith(".lora_embedding_A"):
            module = name[len("base_model.model.") : -len(".lora_embedding_A")]
            b_name = name.replace("lora_embedding_A", "lora_embedding_B")
        else:
            continue
        a = torch.from_numpy(lora[name])
        b = torch.from_numpy(lora[b_name])
        r = int(_pattern(cfg.get("rank_pattern") or {}, module, cfg["r"]))
        alpha = float(_pattern(cfg.get("alpha_pattern") or {}, module, cfg["lora_alpha"]))
        scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
        delta = scale * (b @ a)
        if name.endswith(".lora_embedding_A"):
            delta = delta.T  # PEFT's embedding LoRA: (B @ A).T, one row per token
        key = module + ".weight"
        if key not in state and key == "lm_head.weight":  # tied output layer, untied by the fine-tune
            state[key] = state["model.embed_tokens.weight"].clone()
        state[key] = state[key] + delta
    return state


def write_merged_checkpoint(
    folder: Path, config: dict[str, Any], state: dict[str, Any], tok_src: Path
) -> None:
    """The merged model as a float32 Hugging Face folder, with the fine-tune's tokenizer files."""
    weights = {k: v.numpy() for k, v in state.items()}
    cfg = dict(config, torch_dtype="float32")
    write_checkpoint(folder, cfg, weights, dtype="F32", shards=1)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_bytes((tok_src / name).read_bytes())
