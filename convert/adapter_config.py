"""adapter_config.json: what ozfig refuses in it, and each module's rank, alpha and scale.

A module's update is scale * B @ A with scale = alpha / r, or alpha / sqrt(r) with
`use_rslora`; `rank_pattern` and `alpha_pattern` override r and alpha per module (PEFT
matches a pattern against the end of the module name). Every value is checked here, so that
a config that does not make sense is refused before anything is written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, UnsupportedError

_QUANTIZED_BASE = re.compile(r"bnb|4bit|4-bit|nf4|int4|8bit|gptq|awq", re.IGNORECASE)


def pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's rule: the first pattern that matches the end of the module name, at a dot boundary."""
    for key, value in patterns.items():
        if module == key or re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def lora_scale(alpha: float, rank: int, rslora: bool) -> float:
    return alpha / math.sqrt(rank) if rslora else alpha / rank


def refuse_unsupported(cfg: dict[str, Any], folder: Path) -> None:
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


@dataclass(frozen=True)
class LoraConfig:
    """The LoRA settings of one adapter_config.json, checked: the defaults and the per-module patterns."""

    where: str  # <folder>/adapter_config.json, for messages
    rank: int
    alpha: float
    rslora: bool
    rank_pattern: dict[str, Any]
    alpha_pattern: dict[str, Any]

    @classmethod
    def read(cls, cfg: dict[str, Any], folder: Path) -> LoraConfig:
        where = f"{folder}/adapter_config.json"
        rank = _rank(cfg.get("r", 8), f"{where}: r")
        alpha = _alpha(cfg.get("lora_alpha", rank), f"{where}: lora_alpha")
        rslora = bool(cfg.get("use_rslora", False))
        rank_pattern = _patterns(cfg, "rank_pattern", folder)
        alpha_pattern = _patterns(cfg, "alpha_pattern", folder)
        return cls(where, rank, alpha, rslora, rank_pattern, alpha_pattern)

    def rank_of(self, module: str) -> int:
        return _rank(
            pattern_value(self.rank_pattern, module, self.rank), f"{self.where}: the rank of {module}"
        )

    def alpha_of(self, module: str) -> float:
        return _alpha(
            pattern_value(self.alpha_pattern, module, self.alpha), f"{self.where}: the alpha of {module}"
        )

    def scale(self, alpha: float, rank: int) -> float:
        return lora_scale(alpha, rank, self.rslora)


def config_warnings(cfg: dict[str, Any]) -> list[str]:
    """What the user should know about a config ozfig converts anyway."""
    warnings: list[str] = []
    base_name = str(cfg.get("base_model_name_or_path") or "")
    if _QUANTIZED_BASE.search(base_name):
        warnings.append(
            f"the adapter was trained on a quantized base ({base_name}); merging goes into the 16-bit base "
            "weights you gave, which is the right thing, but results can differ slightly from the quantized "
            "model it was trained with."
        )
    if cfg.get("fan_in_fan_out"):
        warnings.append(
            "adapter_config.json sets fan_in_fan_out, but llama's layers are nn.Linear (weights stored out x in), "
            "for which PEFT ignores it; ozfig does the same."
        )
    return warnings
