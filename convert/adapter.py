"""A PEFT LoRA adapter folder: its config, its tensors, and the scale of each adapted module.

PEFT saves `adapter_config.json` (`adapter_config.py` reads it: ranks, alphas, scales) and
`adapter_model.safetensors` (`adapter_tensors.py` sorts its tensors: LoRA halves, DoRA
magnitudes, whole tensors). `open_adapter` pairs each module's A and B and checks them
against the config. An adapter saved under another name than "default" sits in a subfolder
of that name (`save_pretrained(dir)` writes `dir/<name>/`).

Everything ozfig cannot merge faithfully is refused here, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .adapter_config import LoraConfig, config_warnings, refuse_unsupported
from .adapter_tensors import AdapterParts, sort_tensors, whole_tensors
from .errors import InputError, UnsupportedError
from .read import TensorStore, read_json
from .safetensors_file import TensorInfo


@dataclass(frozen=True)
class LoraModule:
    module: str  # e.g. model.layers.0.self_attn.q_proj
    a: TensorInfo  # rank x in   (embedding: rank x vocab)
    b: TensorInfo  # out x rank  (embedding: dim x rank)
    rank: int
    alpha: float
    scale: float
    embedding: bool = False
    magnitude: TensorInfo | None = None  # DoRA: one learned norm per output row (embedding: per column)

    @property
    def dora(self) -> bool:
        return self.magnitude is not None

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
    # base tensor name -> replacement tensor (modules_to_save, resized embeddings)
    whole: dict[str, TensorInfo]
    warnings: list[str] = field(default_factory=list)
    # base tensor name -> the base layer PEFT saved beside an adapted embedding (`save_embedding_layers`)
    saved_base: dict[str, TensorInfo] = field(default_factory=dict)

    @property
    def scales(self) -> set[float]:
        return {m.scale for m in self.modules}

    def describe(self) -> str:
        cfg = self.config
        ranks = sorted({m.rank for m in self.modules})
        kind = "rsLoRA" if cfg.get("use_rslora") else "LoRA"
        if any(m.dora for m in self.modules):
            kind = "DoRA with rsLoRA scaling" if cfg.get("use_rslora") else "DoRA"
        scales = ", ".join(f"{s:g}" for s in sorted(self.scales)) or "-"
        n_whole = len(self.whole) - len(self.saved_base)
        extra = f", {n_whole} whole tensor(s)" if n_whole else ""
        if self.saved_base:
            extra += f", saved base layer(s) {', '.join(sorted(self.saved_base))}"
        return (
            f"{kind} on {len(self.modules)} modules (r={'/'.join(map(str, ranks)) or '-'}, "
            f"alpha={cfg.get('lora_alpha')}, scale={scales}{extra})"
        )


def adapter_folder(folder: Path) -> Path:
    """The folder that holds adapter_config.json: `folder`, or its one subfolder of a named adapter.

    PEFT's `save_pretrained(dir)` writes an adapter named other than "default" to `dir/<name>/`.
    """
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder. --adapter takes a PEFT adapter folder or Hub id.")
    if (folder / "adapter_config.json").is_file():
        return folder
    named = sorted(p for p in folder.iterdir() if (p / "adapter_config.json").is_file())
    if len(named) == 1:
        return named[0]
    if named:
        raise InputError(
            f"{folder} holds {len(named)} named adapters ({', '.join(p.name for p in named)}); pass the folder "
            f"of the one to convert, for example --adapter {named[0]}."
        )
    raise InputError(f"{folder}/adapter_config.json is missing: {folder} is not a PEFT adapter folder.")


def open_adapter(folder: Path) -> Adapter:
    folder = adapter_folder(folder)
    cfg = read_json(folder / "adapter_config.json")
    refuse_unsupported(cfg, folder)
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        if (folder / "adapter_model.bin").is_file():
            raise UnsupportedError(
                f"{folder} holds adapter_model.bin (a PyTorch pickle). ozfig reads safetensors only: save the "
                "adapter with `save_pretrained(..., safe_serialization=True)`."
            )
        raise InputError(f"{folder} has no adapter_model.safetensors.")
    lora = LoraConfig.read(cfg, folder)
    store = TensorStore([weights])
    parts = sort_tensors(store, folder)
    whole, saved_base = whole_tensors(parts, folder)
    if cfg.get("use_dora") and parts.halves and not parts.magnitude:
        raise InputError(f"{folder} says use_dora: true but holds no DoRA magnitude vectors.")
    orphans = sorted(set(parts.magnitude) - set(parts.halves))
    if orphans:
        raise InputError(f"{folder} holds a DoRA magnitude vector for {orphans[0]} but no LoRA for it.")
    modules = [_lora_module(module, ab, parts, lora, folder) for module, ab in sorted(parts.halves.items())]
    if not modules and not whole:
        raise InputError(f"{folder}/adapter_model.safetensors holds no LoRA tensors.")
    return Adapter(folder, cfg, store, modules, whole, config_warnings(cfg), saved_base)


def _lora_module(
    module: str, ab: dict[str, TensorInfo], parts: AdapterParts, lora: LoraConfig, folder: Path
) -> LoraModule:
    """One module's A and B, checked against each other and against the config."""
    if set(ab) != {"A", "B"}:
        raise InputError(f"{folder}: module {module} has lora_{''.join(ab)} but not its pair.")
    a, b = ab["A"], ab["B"]
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise InputError(f"{folder}: LoRA tensors of {module} are not matrices.")
    rank = a.shape[0]
    if b.shape[1] != rank:
        raise InputError(f"{folder}: {module}'s lora_A has rank {rank} but lora_B has {b.shape[1]}.")
    want_rank = lora.rank_of(module)
    if want_rank != rank:
        raise InputError(
            f"{folder}: {module} has rank {rank} in its tensors but {want_rank} in adapter_config.json "
            "(r / rank_pattern): the config does not belong to these weights."
        )
    alpha = lora.alpha_of(module)
    magnitude = parts.magnitude.get(module)
    if magnitude is not None:
        rows = b.shape[0]  # linear: one per output row; embedding (B is dim x rank): one per column
        if tuple(magnitude.shape) != (rows,):
            raise InputError(
                f"{folder}: {module}'s DoRA magnitude has shape {magnitude.shape}, expected ({rows},)."
            )
    return LoraModule(
        module=module,
        a=a,
        b=b,
        rank=rank,
        alpha=alpha,
        scale=lora.scale(alpha, rank),
        embedding=module in parts.embedding,
        magnitude=magnitude,
    )
