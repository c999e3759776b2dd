"""Adapters written by the real `peft` library, and what peft itself makes of them.

`make_base` saves a tiny random `LlamaForCausalLM` with transformers' own `save_pretrained`
(bf16 safetensors, the tiny byte-level BPE tokenizer or Llama 3's). `make_adapter` wraps a
float32 copy of it with `get_peft_model` (`init_lora_weights=False`: every A and B random),
moves DoRA magnitudes and `modules_to_save` copies away from their initial values (as
training would), saves the adapter with `save_pretrained`, and returns peft's answers:
the tensors `merge_and_unload()` gives, and the logits of the unmerged `PeftModel` and of the
merged model. Nothing here writes adapter files by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.exact_rotary import exact_rotary

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class Cell:
    """One adapter layout peft can write."""

    name: str
    lora: dict[str, Any]  # LoraConfig arguments
    adapter_name: str = "default"
    tied: bool = False  # the base ties lm_head to embed_tokens (Llama 3.2 1B/3B)
    added_tokens: tuple[str, ...] = ()  # added to the tokenizer, embeddings resized
    adapter_only_refusal: tuple[str, ...] = ()  # what `--adapter-only` says when it must refuse


@dataclass
class PeftResult:
    adapter: Path  # the folder to pass to --adapter
    merged: dict[str, np.ndarray]  # the merged model's tensors (Hugging Face names), float32
    logits: np.ndarray  # the reference logits for `ids`
    base_logits: np.ndarray  # the base model's logits for `ids` (the adapter must matter)
    ids: list[int]
    vocab_size: int
    added_ids: dict[str, int] = field(default_factory=dict)


def llama_config(shape: Any, vocab: int, bos: int, eos: int, tied: bool) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.max_positions,
        rope_theta=shape.rope_theta,
        rope_scaling=dict(shape.rope_scaling),
        rms_norm_eps=1e-5,
        initializer_range=0.05,
        bos_token_id=bos,
        eos_token_id=eos,
        tie_word_embeddings=tied,
        architectures=["LlamaForCausalLM"],
    )


def make_base(folder: Path, config: Any, seed: int = 0) -> None:
    """A random tiny Llama saved by transformers' own save_pretrained, in bf16."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)


def load_float32(folder: Path) -> Any:
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def _perturb(model: Any, seed: int) -> None:
    """What training would do to the parts `init_lora_weights=False` leaves at their start values."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_magnitude_vector" in name:
                p.mul_(1 + 0.3 * torch.randn(p.shape, generator=gen))
            elif "modules_to_save" in name:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))


def forward(model: Any, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        logits = exact_rotary(model)(torch.tensor([ids])).logits[0]
    return np.asarray(logits.float().numpy(), dtype=np.float32)


def make_adapter(base: Path, cell: Cell, out: Path, text: str, seed: int = 1) -> PeftResult:
    """Train-free peft adapter for `cell` on `base`, saved to `out`; peft's merge and logits."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    model = load_float32(base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    added_ids: dict[str, int] = {}
    if cell.added_tokens:
        tokenizer.add_tokens(list(cell.added_tokens))
        model.resize_token_embeddings(len(tokenizer))
        added_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in cell.added_tokens}
    ids: list[int] = tokenizer(text)["input_ids"]
    base_logits = forward(model, ids)

    config = LoraConfig(init_lora_weights=False, lora_dropout=0.0, task_type="CAUSAL_LM", **cell.lora)
    peft_model = get_peft_model(model, config, adapter_name=cell.adapter_name).eval()
    _perturb(peft_model, seed)
    peft_model.save_pretrained(out)
    if cell.added_tokens:
        tokenizer.save_pretrained(out)
    unmerged = forward(peft_model, ids)

    inner = peft_model.base_model.model
    tied_output: dict[str, Any] = {}
    if cell.tied:
        # peft's merge adds lm_head's delta into the shared embedding; ozfig unties instead
        embed = inner.model.embed_tokens.weight.detach().clone()
        head = inner.lm_head
        with torch.no_grad():
            output = head.get_base_layer().weight + head.get_delta_weight(cell.adapter_name)
        tied_output = {"model.embed_tokens.weight": embed, "lm_head.weight": output}
    merged_model = peft_model.merge_and_unload()
    merged = {k: v.detach().float().numpy().copy() for k, v in merged_model.state_dict().items()}
    merged.update({k: v.float().numpy().copy() for k, v in tied_output.items()})
    logits = unmerged if cell.tied else forward(merged_model, ids)
    if cell.adapter_name != "default":
        (out / cell.adapter_name / "adapter_config.json").stat()  # peft saves a named adapter in a subfolder
    return PeftResult(
        adapter=out,
        merged=merged,
        logits=logits,
        base_logits=base_logits,
        ids=ids,
        vocab_size=len(tokenizer),
        added_ids=added_ids,
    )
