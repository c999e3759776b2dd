"""Plan and compute the merged tensors: W + scale * (B @ A), a block of rows at a time.

`plan_tensors` checks the whole job before anything is written: every adapter module must
name a base tensor of the right shape, whole replacement tensors must exist in the base
(resized embeddings may change the row count), and every base tensor must have a llama.cpp
name. `TensorJob.rows` then yields float32 blocks of the output tensor in llama.cpp's row
order (the Q/K permutation is a row gather), so peak memory is one block, not one model.

DoRA is merged as PEFT's `merge_and_unload` does: V = W + scale * B @ A, then each output
row of V (for an embedding: each column, one per hidden dimension) is rescaled to the
learned magnitude, V * m / ||V||, the norm taken over the input dimension. Rows are
independent, so linear layers stream as before; an embedding's column norms take one
extra pass over its rows first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .adapter import Adapter, LoraModule
from .errors import ShapeMismatchError, UnsupportedError
from .llama import GGUF_PROJECTIONS, SKIPPED_SUFFIXES, LlamaParams, gguf_name, permute_heads, qk_row_order
from .read import TensorStore
from .safetensors_file import F32Array, TensorInfo

log = logging.getLogger(__name__)

BLOCK_BYTES = 64 * 1024 * 1024  # float32 bytes per block of rows


@dataclass(frozen=True)
class TensorJob:
    """One tensor of the output GGUF and how to compute it."""

    name: str  # llama.cpp name, e.g. blk.0.attn_q.weight
    hf_name: str
    shape: tuple[int, ...]  # numpy order (rows, cols)
    source: TensorInfo
    store: TensorStore
    lora: LoraModule | None = None
    lora_store: TensorStore | None = None
    heads: int | None = None  # Q/K permutation head count

    @property
    def is_norm_or_vector(self) -> bool:
        return len(self.shape) <= 1 or self.name.endswith("_norm.weight")

    def row_order(self) -> npt.NDArray[np.intp] | None:
        if self.heads is None:
            return None
        return qk_row_order(self.shape[0], self.heads)

    def rows(self, block_bytes: int = BLOCK_BYTES) -> Iterator[F32Array]:
        """The output tensor, as float32 blocks of whole rows, in order."""
        if len(self.shape) <= 1:
            yield self.store.f32(self.source.name)
            return
        n_rows, n_cols = self.shape[0], int(np.prod(self.shape[1:]))
        step = max(1, block_bytes // max(1, 4 * n_cols))
        order = self.row_order()
        lora = self._lora_factors()
        magnitude = self._magnitude()
        column_scale = None
        if magnitude is not None and lora is not None and self.lora is not None and self.lora.embedding:
            column_scale = magnitude / self._column_norms(lora, step)
        for start in range(0, n_rows, step):
            stop = min(n_rows, start + step)
            idx: slice | npt.NDArray[np.intp] = slice(start, stop) if order is None else order[start:stop]
            block = self.store.rows_f32(self.source.name, idx)
            if lora is not None:
                left, right = lora  # delta rows = left[idx] @ right
                block += left[idx] @ right
            if column_scale is not None:
                block *= column_scale
            elif magnitude is not None:  # DoRA on a linear layer: each output row to its magnitude
                block *= (magnitude[idx] / np.linalg.norm(block, axis=1))[:, None]
            if order is None:
                self.store.release(
                    self.source.name, (start, stop)
                )  # keep the input's resident pages to a block
            yield block
        self.store.release(self.source.name)

    def _column_norms(self, lora: tuple[F32Array, F32Array], step: int) -> F32Array:
        """||W + delta|| of each column (DoRA on an embedding), one pass over blocks of rows."""
        left, right = lora
        squares = np.zeros(self.shape[1], dtype=np.float64)
        for start in range(0, self.shape[0], step):
            stop = min(self.shape[0], start + step)
            block = self.store.rows_f32(self.source.name, slice(start, stop))
            block += left[start:stop] @ right
            squares += np.einsum("ij,ij->j", block, block, dtype=np.float64)
            self.store.release(self.source.name, (start, stop))
        norms: F32Array = np.sqrt(squares).astype(np.float32)
        return norms

    def _magnitude(self) -> F32Array | None:
        if self.lora is None or self.lora.magnitude is None or self.lora_store is None:
            return None
        return self.lora_store.f32(self.lora.magnitude.name)

    def _lora_factors(self) -> tuple[F32Array, F32Array] | None:
        """(left, right) with scale * delta = left @ right, left indexed by output row."""
        if self.lora is None or self.lora_store is None:
            return None
        m = self.lora
        a = self.lora_store.f32(m.a.name)
        b = self.lora_store.f32(m.b.name)
        scale = np.float32(m.scale)
        if m.embedding:  # delta = (B @ A).T = A.T @ B.T, rows are vocabulary entries
            return np.ascontiguousarray(a.T), np.ascontiguousarray(b.T) * scale
        return b * scale, a


def _tie_source(params: LlamaParams, base: TensorStore) -> str | None:
    if "lm_head.weight" not in base and params.tie_embeddings:
        return "model.embed_tokens.weight"
    return None


def plan_tensors(base: TensorStore, params: LlamaParams, adapter: Adapter | None) -> list[TensorJob]:
    """Every output tensor with its source and LoRA, after checking the whole adapter against the base."""
    lora_by_tensor: dict[str, LoraModule] = {}
    whole: dict[str, TensorInfo] = {}
    if adapter is not None:
        unknown: list[str] = []
        bad_shapes: list[str] = []
        for m in adapter.modules:
            target = m.base_tensor
            origin = target if target in base else None
            if origin is None and target == "lm_head.weight":
                origin = _tie_source(params, base)
            if origin is None:
                unknown.append(m.module)
                continue
            want = tuple(base.info(origin).shape)
            if target in adapter.whole:
                want = tuple(adapter.whole[target].shape)
            if tuple(m.delta_shape) != want:
                bad_shapes.append(f"{m.module}: adapter {m.delta_shape}, base {want}")
            lora_by_tensor[target] = m
        for name, info in adapter.whole.items():
            if name not in base and not (name == "lm_head.weight" and _tie_source(params, base)):
                unknown.append(name)
                continue
            base_shape = (
                base.info(name).shape if name in base else base.info("model.embed_tokens.weight").shape
            )
            resized = (
                name in ("model.embed_tokens.weight", "lm_head.weight") and info.shape[1:] == base_shape[1:]
            )
            if tuple(info.shape) != tuple(base_shape) and not resized:
                bad_shapes.append(f"{name}: adapter {info.shape}, base {base_shape}")
            whole[name] = info
        if unknown:
            raise UnsupportedError(
                f"the adapter targets {len(unknown)} module(s) the base model does not have (first: "
                f"{', '.join(unknown[:3])}). It was made for another architecture or model; check "
                f"base_model_name_or_path in adapter_config.json ({adapter.config.get('base_model_name_or_path')})."
            )
        if bad_shapes:
            raise ShapeMismatchError(
                f"the adapter does not fit this base model: {len(bad_shapes)} tensor(s) differ in shape (first: "
                f"{'; '.join(bad_shapes[:3])}). It was trained on a different size of model; check "
                f"base_model_name_or_path in adapter_config.json ({adapter.config.get('base_model_name_or_path')})."
            )

    names = list(base)
    tie = _tie_source(params, base)
    if tie is not None and ("lm_head.weight" in lora_by_tensor or "lm_head.weight" in whole):
        names.append("lm_head.weight")  # the fine-tune unties the output layer
    jobs: list[TensorJob] = []
    unmapped: list[str] = []
    for hf in names:
        if hf.endswith(SKIPPED_SUFFIXES):
            continue
        out_name = gguf_name(hf, params.n_layer)
        if out_name is None:
            unmapped.append(hf)
            continue
        replacement = whole.get(hf)
        if replacement is not None:
            source, store = replacement, adapter.tensors if adapter else base
        else:
            source = base.info(hf if hf in base else "model.embed_tokens.weight")
            store = base
        lora = lora_by_tensor.get(hf)
        jobs.append(
            TensorJob(
                name=out_name,
                hf_name=hf,
                shape=tuple(source.shape),
                source=source,
                store=store,
                lora=lora,
                lora_store=adapter.tensors if (adapter is not None and lora is not None) else None,
                heads=permute_heads(hf, params),
            )
        )
    if unmapped:
        raise UnsupportedError(
            f"the base checkpoint has {len(unmapped)} tensor(s) llama.cpp's llama architecture has no place for "
            f"(first: {', '.join(unmapped[:3])}); it is not a plain LlamaForCausalLM checkpoint."
        )
    _check_shapes(jobs, params)
    return jobs


def _check_shapes(jobs: list[TensorJob], params: LlamaParams) -> None:
    """The base's own tensors against its config: catches a config.json from another model."""
    want = {f"{GGUF_PROJECTIONS[hf]}.weight": shape for hf, shape in params.projection_shapes().items()}
    for job in jobs:
        suffix = job.name.split(".", 2)[-1] if job.name.startswith("blk.") else job.name
        expected = want.get(suffix)
        if expected is not None and tuple(job.shape) != expected:
            raise ShapeMismatchError(
                f"{job.hf_name} has shape {job.shape} but config.json implies {expected}: the config does not "
                "belong to these weights."
            )
        if suffix in ("token_embd.weight", "output.weight") and job.shape[1] != params.n_embd:
            raise ShapeMismatchError(
                f"{job.hf_name} has {job.shape[1]} columns, hidden_size is {params.n_embd}."
            )
    rows = {job.hf_name: job.shape[0] for job in jobs if job.name in ("token_embd.weight", "output.weight")}
    if len(set(rows.values())) > 1:
        raise ShapeMismatchError(
            "the input and output embeddings have different vocabulary sizes ("
            + ", ".join(f"{k}: {v} rows" for k, v in sorted(rows.items()))
            + "): the fine-tune resized the vocabulary but the adapter does not hold both resized layers. "
            "Save the adapter with both embed_tokens and lm_head (target_modules or modules_to_save)."
        )


def vocab_rows(jobs: list[TensorJob]) -> int:
    for job in jobs:
        if job.name == "token_embd.weight":
            return job.shape[0]
    raise UnsupportedError("the checkpoint has no token embeddings (model.embed_tokens.weight).")
