"""The tensors of a PEFT adapter, sorted by role.

PEFT saves tensors named `base_model.model.<module>.lora_A.weight` (rank x in) and
`...lora_B.weight` (out x rank); embedding LoRA as `lora_embedding_A` (rank x vocab) and
`lora_embedding_B` (dim x rank); DoRA's magnitude vector as `...lora_magnitude_vector`. Whole
tensors come in three forms: `modules_to_save` (`<module>.weight`, or the spellings
`<module>.modules_to_save[.<name>].weight`), and the base layer of an adapted embedding or
output layer that PEFT saves beside the LoRA (`<module>.base_layer.weight`, its
`save_embedding_layers`; larger when the vocabulary was resized). A tensor of any other name
is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, UnsupportedError
from .read import TensorStore
from .safetensors_file import TensorInfo

PREFIX = "base_model.model."
_LORA = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[A-Za-z0-9_-]+)?\.weight$")
_LORA_EMB = re.compile(r"^(?P<module>.+)\.lora_embedding_(?P<ab>[AB])(?:\.[A-Za-z0-9_-]+)?$")
_MAGNITUDE = re.compile(r"^(?P<module>.+)\.lora_magnitude_vector(?:\.[A-Za-z0-9_-]+)?(?:\.weight)?$")
# whole tensors: modules_to_save copies (PEFT's spellings) and saved base layers of adapted embeddings
_SAVED_MODULE = re.compile(r"^(?P<module>.+)\.modules_to_save(?:\.[A-Za-z0-9_-]+)?\.weight$")
_BASE_LAYER = re.compile(r"^(?P<module>.+)\.base_layer\.weight$")
_ORIGINAL_MODULE = re.compile(r"^(?P<module>.+)\.original_module\.weight$")


@dataclass
class AdapterParts:
    """The adapter's tensors sorted by role, keyed by module name (without PEFT's prefix)."""

    halves: dict[str, dict[str, TensorInfo]] = field(default_factory=dict)
    embedding: set[str] = field(default_factory=set)
    magnitude: dict[str, TensorInfo] = field(default_factory=dict)
    saved_module: dict[str, TensorInfo] = field(default_factory=dict)  # modules_to_save copies
    base_layer: dict[str, TensorInfo] = field(default_factory=dict)  # save_embedding_layers copies
    plain: dict[str, TensorInfo] = field(default_factory=dict)  # <module>.weight


def sort_tensors(store: TensorStore, folder: Path) -> AdapterParts:
    parts = AdapterParts()
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


def whole_tensors(parts: AdapterParts, folder: Path) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
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
