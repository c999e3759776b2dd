"""A PEFT LoRA adapter folder: its config, its tensors, and the scale of each adapted module.

PEFT saves `adapter_config.json` and `adapter_model.safetensors` with tensors named
`base_model.model.<module>.lora_A.weight` (rank x in) and `...lora_B.weight` (out x rank);
embedding LoRA as `lora_embedding_A` (rank x vocab) and `lora_embedding_B` (dim x rank);
DoRA's magnitude vector as `...lora_magnitude_vector`. Whole tensors come in three forms:
`modules_to_save` (`<module>.weight`, or the spellings `<module>.modules_to_save[.<name>].weight`),
and the base layer of an adapted embedding or output layer that PEFT saves beside the LoRA
(`<module>.base_layer.weight`, its `save_embedding_layers`; larger when the vocabulary was
resized). A module's update is scale * B @ A with scale = alpha / r, or alpha / sqrt(r) with
`use_rslora`; `rank_pattern` and `alpha_pattern` override r and alpha per module (PEFT
matches a pattern against the end of the module name). An adapter saved under another name
than "default" sits in a subfolder of that name (`save_pretrained(dir)` writes `dir/<name>/`).

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

log = logging.getLogger(__name__)

PREFIX = "base_model.model."
_LORA = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[A-Za-z0-9_-]+)?\.weight$")
_LORA_EMB = re.compile(r"^(?P<module>.+)\.lora_embedding_(?P<ab>[AB])(?:\.[A-Za-z0-9_-]+)?$")
_MAGNITUDE = re.compile(r"^(?P<module>.+)\.lora_magnitude_vector(?:\.[A-Za-z0-9_-]+)?(?:\.weight)?$")
# whole tensors: modules_to_save copies (PEFT's spellings) and saved base layers of adapted embeddings
_SAVED_MODULE = re.compile(r"^(?P<module>.+)\.modules_to_save(?:\.[A-Za-z0-9_-]+)?\.weight$")
_BASE_LAYER = re.compile(r"^(?P<module>.+)\.base_layer\.weight$")
_ORIGINAL_MODULE = re.compile(r"^(?P<module>.+)\.original_module\.weight$")
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


def _rank(value: Any, where: str) -> int:
    """A LoRA rank: a whole number of at least 1 (JSON `16`, not `0`, `16.5`, `true` or `"16"`)."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        raise InputError(f"{where} is {value!r}; a LoRA rank must be a whole number of at least 1.")
    return int(value)


def _alpha(value: Any, where: str) -> float:
    """lora_alpha: a finite number (JSON allows NaN and Infinity; a merge with them is garbage)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where} is {value!r}; lora_alpha must be a finite number.")
    return float(value)


def _patterns(cfg: dict[str, Any], key: str, folder: Path) -> dict[str, Any]:
    value = cfg.get(key) or {}
    if not isinstance(value, dict):
        raise InputError(f"{folder}/adapter_config.json: {key} must be an object (pattern -> value).")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InputError(
                f"{folder}/adapter_config.json: {key} has a pattern that is not a valid regular expression "
                f"({pattern!r}: {exc})."
            ) from None
    return value


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


@dataclass
class _Parts:
    """The adapter's tensors sorted by role, keyed by module name (without PEFT's prefix)."""

    halves: dict[str, dict[str, TensorInfo]] = field(default_factory=dict)
    embedding: set[str] = field(default_factory=set)
    magnitude: dict[str, TensorInfo] = field(default_factory=dict)
    saved_module: dict[str, TensorInfo] = field(default_factory=dict)  # modules_to_save copies
    base_layer: dict[str, TensorInfo] = field(default_factory=dict)  # save_embedding_layers copies
    plain: dict[str, TensorInfo] = field(default_factory=dict)  # <module>.weight


def _sort_tensors(store: TensorStore, folder: Path) -> _Parts:
    parts = _Parts()
    for name in store:
        info = store.info(name)
        key = name[len(PREFIX) :] if name.startswith(PREFIX) else name
        if key.endswith(".bias") and ".lora_" in key:
            raise UnsupportedError(f"{folder} holds a LoRA bias ({name}), which llama has no place for.")
        if m := _LORA.match(key):
            parts.halves.setdefault(m["module"], {})[m["ab"]] = info
        elif m := _LORA_EMB.match(key):
            parts.halves.setdefault(m["module"], {})[m["ab"]] = info
            parts.embedding.add(m["module"])
        elif m := _MAGNITUDE.match(key):
            parts.magnitude[m["module"]] = info
        elif ".lora_" in key:
            raise UnsupportedError(f"{folder} holds a LoRA tensor ozfig does not know: {name}")
        elif m := _SAVED_MODULE.match(key):
            parts.saved_module[m["module"]] = info
        elif m := _BASE_LAYER.match(key):
            parts.base_layer[m["module"]] = info
        elif _ORIGINAL_MODULE.match(key):
            continue  # the frozen original beside a modules_to_save copy: the copy is what the model uses
        elif key.endswith(".weight"):
            parts.plain[key[: -len(".weight")]] = info
        else:
            raise UnsupportedError(f"{folder} holds a tensor ozfig does not know what to do with: {name}")
    return parts


def _whole_tensors(parts: _Parts, folder: Path) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
    """(whole, saved_base): base tensor name -> the adapter's tensor that replaces it."""
    whole: dict[str, TensorInfo] = {}
    for module, info in {**parts.plain, **parts.saved_module}.items():  # both spellings: the same tensor
        whole[f"{module}.weight"] = info
    saved_base: dict[str, TensorInfo] = {}
    for module, info in parts.base_layer.items():
        if module not in parts.halves:
            raise InputError(
                f"{folder} holds {module}.base_layer.weight but no LoRA for {module}: it is not an adapter PEFT wrote."
            )
        if f"{module}.weight" in whole:
            raise InputError(
                f"{folder} holds two replacements for {module}: its base layer and a whole copy."
            )
        saved_base[f"{module}.weight"] = info
    return {**whole, **saved_base}, saved_base


def open_adapter(folder: Path) -> Adapter:
    folder = adapter_folder(folder)
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
    where = f"{folder}/adapter_config.json"
    r_default = _rank(cfg.get("r", 8), f"{where}: r")
    alpha_default = _alpha(cfg.get("lora_alpha", r_default), f"{where}: lora_alpha")
    rslora = bool(cfg.get("use_rslora", False))
    rank_pattern = _patterns(cfg, "rank_pattern", folder)
    alpha_pattern = _patterns(cfg, "alpha_pattern", folder)
    store = TensorStore([weights])
    warnings: list[str] = []
    base_name = str(cfg.get("base_model_name_or_path") or "")
    if _QUANTIZED_BASE.search(base_name):
        warnings.append(
            f"the adapter was trained on a quantized base ({base_name}); merging goes into the 16-bit base "
            "weights you gave, which is the right thing, but results can differ slightly from the quantized "
            "model it was trained with."
        )

    parts = _sort_tensors(store, folder)
    whole, saved_base = _whole_tensors(parts, folder)
    if cfg.get("use_dora") and parts.halves and not parts.magnitude:
        raise InputError(f"{folder} says use_dora: true but holds no DoRA magnitude vectors.")
    orphans = sorted(set(parts.magnitude) - set(parts.halves))
    if orphans:
        raise InputError(f"{folder} holds a DoRA magnitude vector for {orphans[0]} but no LoRA for it.")

    modules: list[LoraModule] = []
    for module, ab in sorted(parts.halves.items()):
        if set(ab) != {"A", "B"}:
            raise InputError(f"{folder}: module {module} has lora_{''.join(ab)} but not its pair.")
        a, b = ab["A"], ab["B"]
        if len(a.shape) != 2 or len(b.shape) != 2:
            raise InputError(f"{folder}: LoRA tensors of {module} are not matrices.")
        emb = module in parts.embedding
        rank = a.shape[0]
        if b.shape[1] != rank:
            raise InputError(f"{folder}: {module}'s lora_A has rank {rank} but lora_B has {b.shape[1]}.")
        want_rank = _rank(pattern_value(rank_pattern, module, r_default), f"{where}: the rank of {module}")
        if want_rank != rank:
            raise InputError(
                f"{folder}: {module} has rank {rank} in its tensors but {want_rank} in adapter_config.json "
                "(r / rank_pattern): the config does not belong to these weights."
            )
        alpha = _alpha(pattern_value(alpha_pattern, module, alpha_default), f"{where}: the alpha of {module}")
        magnitude = parts.magnitude.get(module)
        if magnitude is not None:
            rows = b.shape[0]  # linear: one per output row; embedding (B is dim x rank): one per column
            if tuple(magnitude.shape) != (rows,):
                raise InputError(
                    f"{folder}: {module}'s DoRA magnitude has shape {magnitude.shape}, expected ({rows},)."
                )
        modules.append(
            LoraModule(
                module=module,
                a=a,
                b=b,
                rank=rank,
                alpha=alpha,
                scale=lora_scale(alpha, rank, rslora),
                embedding=emb,
                magnitude=magnitude,
            )
        )
    if not modules and not whole:
        raise InputError(f"{folder}/adapter_model.safetensors holds no LoRA tensors.")
    if cfg.get("fan_in_fan_out"):
        warnings.append(
            "adapter_config.json sets fan_in_fan_out, but llama's layers are nn.Linear (weights stored out x in), "
            "for which PEFT ignores it; ozfig does the same."
        )
    return Adapter(folder, cfg, store, modules, whole, warnings, saved_base)
