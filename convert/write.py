"""Write llama GGUF files with the `gguf` package, streaming.

All metadata and every tensor's name, shape and type go first (the header), then the data
one tensor at a time, each filled from blocks of merged rows: peak memory is about one
output tensor. Vectors and norms are stored as F32, matrices as the chosen float type;
llama.cpp's quantizer takes it from there (see quantize.py).

`write_model` writes a whole model; `write_adapter` writes llama.cpp's LoRA adapter form
(`general.type = adapter`), which llama.cpp applies at load time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import numpy.typing as npt

from .adapter import LoraModule
from .llama import ARCH_NAME, LlamaParams, llama3_rope_factors
from .merge import TensorJob
from .read import TensorStore
from .safetensors_file import F32Array
from .tokenizer import Vocab

log = logging.getLogger(__name__)

Q = gguf.GGMLQuantizationType
FLOAT_TYPES: dict[str, Q] = {"F32": Q.F32, "F16": Q.F16, "BF16": Q.BF16}
FILE_TYPES: dict[Q, gguf.LlamaFileType] = {
    Q.F32: gguf.LlamaFileType.ALL_F32,
    Q.F16: gguf.LlamaFileType.MOSTLY_F16,
    Q.BF16: gguf.LlamaFileType.MOSTLY_BF16,
}
_NP_TYPES: dict[Q, type[np.generic]] = {Q.F32: np.float32, Q.F16: np.float16, Q.BF16: np.uint16}
# sampling defaults from generation_config.json -> general.sampling.* (llama.cpp uses them as defaults)
_SAMPLING = {
    "top_k": ("add_sampling_top_k", int),
    "top_p": ("add_sampling_top_p", float),
    "min_p": ("add_sampling_min_p", float),
    "temperature": ("add_sampling_temp", float),
    "repetition_penalty": ("add_sampling_penalty_repeat", float),
}
# test hook: after the first tensor's data is on disk, wait this many seconds, so that a test
# can signal a run that is certainly mid-write
_HOLD_ENV = "OZFIG_CONVERT_TEST_HOLD"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ModelMeta:
    name: str
    generation_config: dict[str, Any]


@dataclass(frozen=True)
class PlannedTensor:
    name: str
    shape: tuple[int, ...]
    qtype: Q
    fill: Callable[[npt.NDArray[Any]], None]  # writes the tensor's values into a preallocated array

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(_NP_TYPES[self.qtype]).itemsize


def encode(block: F32Array, qtype: Q) -> npt.NDArray[Any]:
    """float32 values in the stored form of `qtype` (F32, F16, or BF16 bits as uint16)."""
    if qtype == Q.F32:
        return block
    if qtype == Q.F16:
        return block.astype(np.float16)
    return np.asarray(gguf.quants.quantize(np.ascontiguousarray(block), Q.BF16)).view(np.uint16)


def job_tensor(job: TensorJob, outtype: Q) -> PlannedTensor:
    qtype = Q.F32 if job.is_norm_or_vector else outtype

    def fill(out: npt.NDArray[Any]) -> None:
        row = 0
        for block in job.rows():
            target = out if out.ndim <= 1 else out[row : row + block.shape[0]]
            if qtype == Q.BF16:
                target[...] = encode(block, qtype)
            else:
                target[...] = block  # numpy casts float32 -> float16 on assignment, like astype
            row += block.shape[0]

    return PlannedTensor(job.name, tuple(job.shape), qtype, fill)


def constant_tensor(name: str, values: F32Array) -> PlannedTensor:
    def fill(out: npt.NDArray[Any]) -> None:
        out[...] = values

    return PlannedTensor(name, tuple(values.shape), Q.F32, fill)


def total_parameters(tensors: Sequence[PlannedTensor]) -> int:
    return sum(int(np.prod(t.shape, dtype=np.int64)) for t in tensors)


def model_tensors(jobs: list[TensorJob], params: LlamaParams, outtype: Q) -> list[PlannedTensor]:
    tensors: list[PlannedTensor] = []
    if params.rope_type == "llama3":
        factors = llama3_rope_factors(params.rope, params.head_dim)
        tensors.append(constant_tensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", factors))
    tensors.extend(job_tensor(job, outtype) for job in jobs)
    return tensors


def add_model_metadata(
    w: gguf.GGUFWriter, params: LlamaParams, vocab: Vocab, meta: ModelMeta, outtype: Q, n_params: int
) -> None:
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(meta.name)
    w.add_size_label(gguf.size_label(n_params, 0, 0, 0))
    w.add_block_count(params.n_layer)
    if params.n_ctx is not None:
        w.add_context_length(params.n_ctx)
    w.add_embedding_length(params.n_embd)
    w.add_feed_forward_length(params.n_ff)
    w.add_head_count(params.n_head)
    w.add_head_count_kv(params.n_head_kv)
    if params.rope_type == "linear" and params.rope.get("factor") is not None:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(params.rope["factor"]))
    if params.rope_theta is not None:
        w.add_rope_freq_base(params.rope_theta)
    w.add_layer_norm_rms_eps(params.rms_eps)
    w.add_key_length(params.head_dim)
    w.add_value_length(params.head_dim)
    w.add_file_type(FILE_TYPES[outtype])
    w.add_vocab_size(len(vocab.tokens))
    w.add_rope_dimension_count(params.head_dim)
    for key, (method, kind) in _SAMPLING.items():
        value = meta.generation_config.get(key)
        add = getattr(w, method, None)  # older gguf packages lack the sampling keys
        if add is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            add(kind(value))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_vocab(w, vocab)


def add_vocab(w: gguf.GGUFWriter, vocab: Vocab) -> None:
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(vocab.pre)
    w.add_token_list(vocab.tokens)
    w.add_token_types(vocab.types)
    w.add_token_merges(vocab.merges)
    for kind, token_id in vocab.special_ids.items():
        handler = getattr(w, f"add_{kind}_token_id", None)  # gguf has no key for some kinds (cls)
        if handler is not None:
            handler(token_id)
    if vocab.add_bos is not None:
        w.add_add_bos_token(vocab.add_bos)
    if vocab.add_eos is not None:
        w.add_add_eos_token(vocab.add_eos)
    if vocab.add_sep is not None:
        w.add_add_sep_token(vocab.add_sep)
    if vocab.add_space_prefix is not None:
        w.add_add_space_prefix(vocab.add_space_prefix)
    if vocab.chat_template is not None:
        w.add_chat_template(vocab.chat_template)


def stream(w: gguf.GGUFWriter, path: Path, tensors: list[PlannedTensor], progress: Progress | None) -> None:
    """Header, metadata and tensor infos, then each tensor's data, one at a time."""
    for t in tensors:
        np_type = _NP_TYPES[t.qtype]
        w.add_tensor_info(t.name, t.shape, np.dtype(np_type), t.nbytes, raw_dtype=t.qtype)
    hold = float(os.environ.get(_HOLD_ENV, "0") or 0)
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for t in tensors:
        out = np.empty(t.shape, dtype=_NP_TYPES[t.qtype])
        t.fill(out)
        w.write_tensor_data(out)
        del out
        if progress is not None:
            progress(t.nbytes)
        if hold:
            w.flush()
            time.sleep(hold)
            hold = 0
    w.flush()
    assert w.fout is not None
    for fh in w.fout:
        os.fsync(fh.fileno())
    w.close()


def write_model(
    path: Path,
    jobs: list[TensorJob],
    params: LlamaParams,
    vocab: Vocab,
    meta: ModelMeta,
    outtype: Q,
    progress: Progress | None = None,
) -> None:
    tensors = model_tensors(jobs, params, outtype)
    w = gguf.GGUFWriter(None, ARCH_NAME)
    add_model_metadata(w, params, vocab, meta, outtype, total_parameters(tensors))
    try:
        stream(w, path, tensors, progress)
    finally:
        w.close()


@dataclass(frozen=True)
class AdapterTensorPair:
    name: str  # llama.cpp name of the adapted tensor, e.g. blk.0.attn_q.weight
    module: LoraModule
    heads: int | None


def adapter_alpha(modules: Sequence[LoraModule]) -> tuple[float, bool]:
    """(adapter.lora.alpha, fold): llama.cpp scales each pair by alpha / rank.

    When scale * rank is the same for every module (one r and alpha, with or without
    rsLoRA), alpha = scale * rank reproduces each module's scale and B is written as it is.
    Otherwise (rank_pattern / alpha_pattern) each B is multiplied by its module's scale and
    alpha is 0, which llama.cpp reads as "scale 1".
    """
    products = {round(m.scale * m.rank, 9) for m in modules}
    if len(products) == 1:
        return float(next(iter(products))), False
    return 0.0, True


def adapter_tensors(
    pairs: list[AdapterTensorPair], store: TensorStore, outtype: Q, fold: bool
) -> list[PlannedTensor]:
    from .llama import qk_row_order

    tensors: list[PlannedTensor] = []
    for pair in pairs:
        m = pair.module

        def fill_a(out: npt.NDArray[Any], m: LoraModule = m) -> None:
            a = store.f32(m.a.name)
            out[...] = encode(np.ascontiguousarray(a.T) if m.embedding else a, outtype)

        def fill_b(out: npt.NDArray[Any], m: LoraModule = m, heads: int | None = pair.heads) -> None:
            b = store.f32(m.b.name)
            if heads is not None:
                b = b[qk_row_order(b.shape[0], heads)]
            if fold:
                b = b * np.float32(m.scale)
            out[...] = encode(np.ascontiguousarray(b), outtype)

        a_shape = (m.a.shape[1], m.a.shape[0]) if m.embedding else tuple(m.a.shape)
        tensors.append(PlannedTensor(f"{pair.name}.lora_a", tuple(a_shape), outtype, fill_a))
        tensors.append(PlannedTensor(f"{pair.name}.lora_b", tuple(m.b.shape), outtype, fill_b))
    return tensors


def write_adapter(
    path: Path,
    pairs: list[AdapterTensorPair],
    store: TensorStore,
    name: str,
    outtype: Q,
    progress: Progress | None = None,
) -> float:
    """Write the LoRA GGUF; returns the alpha written."""
    alpha, fold = adapter_alpha([p.module for p in pairs])
    w = gguf.GGUFWriter(None, ARCH_NAME)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_name(name)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    try:
        stream(w, path, adapter_tensors(pairs, store, outtype, fold), progress)
    finally:
        w.close()
    return alpha
