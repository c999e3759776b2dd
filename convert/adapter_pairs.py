"""The LoRA pairs of an adapter GGUF, and every reason llama.cpp could not apply the adapter as one.

`ozfig convert --adapter-only` writes the adapter's A and B matrices for llama.cpp to apply at
load time. That is only faithful for plain LoRA on tensors the base has, in the base's shapes:
DoRA, whole-tensor replacements, a LoRA on an lm_head tied to the embeddings, modules of
another architecture and a resized vocabulary are refused here (a merged model can hold them).
"""

from __future__ import annotations

import numpy as np

from .adapter import Adapter
from .errors import ShapeMismatchError, UnsupportedError
from .llama import LlamaParams, gguf_name, permute_heads
from .read import TensorStore
from .write import AdapterTensorPair


def adapter_pairs(
    adapter: Adapter, params: LlamaParams, base_tensors: TensorStore | None
) -> list[AdapterTensorPair]:
    dora = [m.module for m in adapter.modules if m.dora]
    if dora:
        raise UnsupportedError(
            f"the adapter is DoRA (magnitude vectors on {len(dora)} module(s), first: {dora[0]}): llama.cpp applies "
            "only plain LoRA at load time, so it cannot be an adapter GGUF. Convert without --adapter-only to "
            "merge it."
        )
    replaced = sorted(set(adapter.whole) - set(adapter.saved_base))
    if replaced:
        raise UnsupportedError(
            f"the adapter replaces whole tensors ({', '.join(replaced[:3])}: modules_to_save or resized "
            "embeddings), which llama.cpp's LoRA GGUF cannot carry. Convert without --adapter-only to merge them."
        )
    check_saved_base_layers(adapter, params, base_tensors)
    want = {
        **params.projection_shapes(),
        "embed_tokens": (params.vocab_size, params.n_embd),
        "lm_head": (params.vocab_size, params.n_embd),
    }
    pairs: list[AdapterTensorPair] = []
    unknown: list[str] = []
    bad: list[str] = []
    for m in adapter.modules:
        hf = m.base_tensor
        name = gguf_name(hf, params.n_layer)
        if name is None:
            unknown.append(m.module)
            continue
        if hf == "lm_head.weight" and params.tie_embeddings:
            raise UnsupportedError(
                "the adapter trains lm_head, which this base ties to the embeddings: llama.cpp's LoRA GGUF cannot "
                "apply it. Convert without --adapter-only to merge it."
            )
        expected = want.get(m.module.rsplit(".", 1)[-1])
        if base_tensors is not None and hf in base_tensors:
            expected = tuple(base_tensors.info(hf).shape)  # type: ignore[assignment]
        if expected is not None and tuple(m.delta_shape) != tuple(expected):
            bad.append(f"{m.module}: adapter {m.delta_shape}, base {tuple(expected)}")
        pairs.append(AdapterTensorPair(name, m, permute_heads(hf, params)))
    if unknown:
        raise UnsupportedError(
            f"the adapter targets {len(unknown)} module(s) llama has no place for (first: {', '.join(unknown[:3])}): "
            "it was made for another architecture."
        )
    if bad:
        raise ShapeMismatchError(
            f"the adapter does not fit this base model: {len(bad)} tensor(s) differ in shape (first: "
            f"{'; '.join(bad[:3])})."
        )
    return pairs


def check_saved_base_layers(adapter: Adapter, params: LlamaParams, base_tensors: TensorStore | None) -> None:
    """The embedding layers PEFT saved beside the LoRA must be the base's own: the adapter GGUF cannot carry them.

    PEFT saves them whenever embed_tokens or lm_head is adapted; they differ from the base
    only when the fine-tune resized the vocabulary (more rows), which needs a merged model.
    """
    for name, info in sorted(adapter.saved_base.items()):
        base_shape = (params.vocab_size, params.n_embd)
        if base_tensors is not None and name in base_tensors:
            base_shape = tuple(base_tensors.info(name).shape)  # type: ignore[assignment]
        same = tuple(info.shape) == base_shape
        if same and base_tensors is not None and name in base_tensors:
            step = max(1, (64 << 20) // max(1, 4 * base_shape[1]))
            for start in range(0, base_shape[0], step):
                rows = slice(start, min(base_shape[0], start + step))
                if not np.array_equal(
                    adapter.tensors.rows_f32(info.name, rows), base_tensors.rows_f32(name, rows)
                ):
                    same = False
                    break
        if not same:
            raise UnsupportedError(
                f"the adapter carries its own {name} ({info.shape[0]} rows; the base has {base_shape[0]}): the "
                "fine-tune resized the vocabulary or changed the embeddings, which llama.cpp's LoRA GGUF cannot "
                "carry. Convert without --adapter-only to merge them."
            )
