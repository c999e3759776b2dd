"""A PEFT LoRA adapter folder: its config, its tensors, and the scale of each adapted module.

PEFT saves `adapter_config.json` and `adapter_model.safetensors` with tensors named
`base_model.model.<module>.lora_A.weight` (rank x in) and `...lora_B.weight` (out x rank);
embedding LoRA as `lora_embedding_A` (rank x vocab) and `lora_embedding_B` (dim x rank);
modules listed in `modules_to_save` (and resized embeddings) as the whole tensor,
`base_model.model.<module>.weight`. A module's update is scale * B @ A with
scale = alpha / r, or alpha / sqrt(r) with `use_rslora`; `rank_pattern` and `alpha_pattern`
override r and alpha per module (PEFT matches a pattern against the end of the module name).

Everything ozfig cannot merge faithfully is refused here, before anything is written.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, UnsupportedError
from .read import TensorInfo, TensorStore, read_json

log = logging.getLogger("ozfig.convert.adapter")

PREFIX = "base_model.model."
_LORA = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[A-Za-z0-9_-]+)?\.weight$")
_LORA_EMB = re.compile(r"^(?P<module>.+)\.lora_embedding_(?P<ab>[AB])(?:\.[A-Za-z0-9_-]+)?$")
_QUANTIZED_BASE = re.compile(r"bnb|4bit|4-bit|nf4|int4|8bit|gptq|awq", re.IGNORECASE)


@dataclass(frozen=True)
class LoraModule:
    module: str  # e.g. model.layers.0.self_attn.q_proj
    a: TensorInfo  # rank x in   (embedding: rank x vocab)
    b: TensorInfo  # out x rank  (embedding: dim x rank)
    rank: int
    alpha: float
    scale: float
    embedding: bool = False

    @property
    def base_tensor(self) -> str:
        return f"{self.module}.weight"

    @property
    def delta_shape(self) -> tuple[int, int]:
        if self.embedding:  # (B @ A).T: vocab x dim
            return (self.a.shape[1], self.b.shape[0])
        return (self.b.shape[0], self.a.shape[1])


@dataclass
class Adapter:
    folder: Path
    config: dict[str, Any]
    tensors: TensorStore
    modules: list[LoraModule]
    whole: dict[
        str, TensorInfo
    ]  # base tensor name -> replacement tensor (modules_to_save, resized embeddings)
    warnings: list[str] = field(default_factory=list)

    @property
    def scales(self) -> set[float]:
        return {m.scale for m in self.modules}

    def describe(self) -> str:
        cfg = self.config
        ranks = sorted({m.rank for m in self.modules})
        kind = "rsLoRA" if cfg.get("use_rslora") else "LoRA"
        scales = ", ".join(f"{s:g}" for s in sorted(self.scales)) or "-"
        extra = f", {len(self.whole)} whole tensor(s)" if self.whole else ""
        return (
            f"{kind} on {len(self.modules)} modules (r={'/'.join(map(str, ranks)) or '-'}, "
            f"alpha={cfg.get('lora_alpha')}, scale={scales}{extra})"
        )


def pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's rule: the first pattern that matches the end of the module name, at a dot boundary."""
    for key, value in patterns.items():
        if module == key or re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def lora_scale(alpha: float, rank: int, rslora: bool) -> float:
    return alpha / math.sqrt(rank) if rslora else alpha / rank


def _refuse_unsupported(cfg: dict[str, Any], folder: Path) -> None:
    peft_type = str(cfg.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise UnsupportedError(f"{folder} is a {peft_type} adapter; ozfig convert merges LoRA adapters only.")
    if cfg.get("use_dora"):
        raise UnsupportedError(
            f"{folder} is a DoRA adapter (use_dora: true). DoRA rescales each weight column by a learned "
            "magnitude, which is not a low-rank update; ozfig convert does not merge it. Merge it with PEFT "
            "(merge_and_unload) and convert the merged model instead."
        )
    if cfg.get("lora_bias"):
        raise UnsupportedError(
            f"{folder} trains LoRA biases (lora_bias: true), which llama has no place for."
        )
    if cfg.get("layer_replication"):
        raise UnsupportedError(f"{folder} uses layer_replication, which ozfig convert does not support.")
    if cfg.get("trainable_token_indices"):
        raise UnsupportedError(
            f"{folder} trains selected token embeddings (trainable_token_indices); ozfig convert does not "
            "support it yet. Merge it with PEFT and convert the merged model instead."
        )
    if cfg.get("target_parameters"):
        raise UnsupportedError(f"{folder} adapts parameters directly (target_parameters); not supported.")


def open_adapter(folder: Path) -> Adapter:
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder. --adapter takes a PEFT adapter folder or Hub id.")
    cfg = read_json(folder / "adapter_config.json")
    _refuse_unsupported(cfg, folder)
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        if (folder / "adapter_model.bin").is_file():
            raise UnsupportedError(
                f"{folder} holds adapter_model.bin (a PyTorch pickle). ozfig reads safetensors only: save the "
                "adapter with `save_pretrained(..., safe_serialization=True)`."
            )
        raise InputError(f"{folder} has no adapter_model.safetensors.")
    store = TensorStore([weights])
    warnings: list[str] = []
    base_name = str(cfg.get("base_model_name_or_path") or "")
    if _QUANTIZED_BASE.search(base_name):
        warnings.append(
            f"the adapter was trained on a quantized base ({base_name}); merging goes into the 16-bit base "
            "weights you gave, which is the right thing, but results can differ slightly from the quantized "
            "model it was trained with."
        )
    try:
        r_default = int(cfg.get("r", 8))
        alpha_default = float(cfg.get("lora_alpha", r_default))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{folder}/adapter_config.json has a bad r or lora_alpha: {exc}") from None
    rslora = bool(cfg.get("use_rslora", False))
    rank_pattern: dict[str, Any] = cfg.get("rank_pattern") or {}
    alpha_pattern: dict[str, Any] = cfg.get("alpha_pattern") or {}

    halves: dict[str, dict[str, TensorInfo]] = {}
    embedding: set[str] = set()
    whole: dict[str, TensorInfo] = {}
    for name in store:
        info = store.info(name)
        key = name[len(PREFIX) :] if name.startswith(PREFIX) else name
        if "lora_magnitude_vector" in key:
            raise UnsupportedError(f"{folder} holds DoRA magnitude vectors ({name}); DoRA is not supported.")
        m = _LORA.match(key)
        m_emb = _LORA_EMB.match(key)
        if key.endswith(".bias") and ".lora_" in key:
            raise UnsupportedError(f"{folder} holds a LoRA bias ({name}), which llama has no place for.")
        if m:
            halves.setdefault(m["module"], {})[m["ab"]] = info
        elif m_emb:
            halves.setdefault(m_emb["module"], {})[m_emb["ab"]] = info
            embedding.add(m_emb["module"])
        elif ".lora_" in key:
            raise UnsupportedError(f"{folder} holds a LoRA tensor ozfig does not know: {name}")
        else:
            whole[key] = info

    modules: list[LoraModule] = []
    for module, ab in sorted(halves.items()):
        if set(ab) != {"A", "B"}:
            raise InputError(f"{folder}: module {module} has lora_{''.join(ab)} but not its pair.")
        a, b = ab["A"], ab["B"]
        if len(a.shape) != 2 or len(b.shape) != 2:
            raise InputError(f"{folder}: LoRA tensors of {module} are not matrices.")
        emb = module in embedding
        rank = a.shape[0]
        if b.shape[1] != rank:
            raise InputError(f"{folder}: {module}'s lora_A has rank {rank} but lora_B has {b.shape[1]}.")
        want_rank = int(pattern_value(rank_pattern, module, r_default))
        if want_rank != rank:
            raise InputError(
                f"{folder}: {module} has rank {rank} in its tensors but {want_rank} in adapter_config.json "
                "(r / rank_pattern): the config does not belong to these weights."
            )
        alpha = float(pattern_value(alpha_pattern, module, alpha_default))
        modules.append(
            LoraModule(
                module=module,
                a=a,
                b=b,
                rank=rank,
                alpha=alpha,
                scale=lora_scale(alpha, rank, rslora),
                embedding=emb,
            )
        )
    if not modules and not whole:
        raise InputError(f"{folder}/adapter_model.safetensors holds no LoRA tensors.")
    if cfg.get("fan_in_fan_out"):
        warnings.append(
            "adapter_config.json sets fan_in_fan_out, but llama's layers are nn.Linear (weights stored out x in), "
            "for which PEFT ignores it; ozfig does the same."
        )
    return Adapter(folder, cfg, store, modules, whole, warnings)
