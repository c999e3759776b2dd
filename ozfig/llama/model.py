"""A GGUF model loaded through llama-cpp-python's low-level API.

`LlamaModel` owns the `llama_model` pointer and its vocabulary: tokenizing (with special
token parsing on or off), turning tokens back into bytes, the metadata (chat template,
name, context length) and new contexts. It is used by the serving engine, the evaluation
tools and the converter's checks alike. Contexts are not thread-safe; the model itself is read-only.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

import llama_cpp as lc

from ..cpus import available_cpus
from ..errors import ModelFormatError, ModelLoadError, ModelNotFoundError
from .backend import (
    clear_errors,
    cpu_has_amx,
    gpu_offload_supported,
    init_backend,
    raise_if_interrupted,
    recent_errors,
)
from .context import Context

GGUF_MAGIC = b"GGUF"


def check_gguf_file(path: str) -> None:
    """Cheap checks before a load: the file exists and starts with the GGUF magic."""
    if not os.path.exists(path):
        raise ModelNotFoundError(
            f"The model file {path!r} does not exist. Pass --model (or OZFIG_MODEL) with the path of a "
            "GGUF file, or a Hugging Face Hub file written as OWNER/REPO/FILE.gguf."
        )
    if os.path.isdir(path):
        raise ModelFormatError(
            f"{path!r} is a folder, not a GGUF file. Point --model at the .gguf file inside it."
        )
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelFormatError(
            f"{path!r} is not a GGUF file (it does not start with the GGUF magic bytes). ozfig serves GGUF "
            "models only: convert a Hugging Face checkpoint with `ozfig convert`, or download a .gguf file."
        )


@dataclass(frozen=True)
class ContextParams:
    n_ctx: int
    n_batch: int = 512
    n_seq: int = 1
    threads: int = 0
    flash_attention: bool | None = None  # None = let llama.cpp choose
    embeddings: bool = False
    kv_unified: bool = True  # one KV buffer shared by all sequences; False = a stream per sequence


class LlamaModel:
    """A loaded GGUF model and its vocabulary."""

    def __init__(self, path: str, gpu_layers: int = 0, lora: str = "", *, vocab_only: bool = False) -> None:
        """`vocab_only` reads the metadata and vocabulary only (no weights: for checks, no contexts)."""
        check_gguf_file(path)
        init_backend()
        self.path = path
        self.lora_path = lora
        params = lc.llama_model_default_params()
        params.n_gpu_layers = (
            0 if not gpu_offload_supported() else (1_000_000 if gpu_layers < 0 else gpu_layers)
        )
        params.vocab_only = vocab_only
        self.gpu_layers = params.n_gpu_layers
        # llama.cpp's AMX weight buffers (picked on CPUs with AMX tiles, as Xeon Sapphire Rapids)
        # crash in ggml_backend_amx_mul_mat on the first decode from the engine's thread; without
        # the extra buffer types the same CPU runs the plain AVX-512 kernels. Other CPUs keep them.
        params.use_extra_bufts = not cpu_has_amx()
        clear_errors()
        ptr = lc.llama_model_load_from_file(path.encode(), params)
        raise_if_interrupted()  # Ctrl-C during the load (a leaked model does not outlive the process)
        if not ptr:
            detail = recent_errors()
            raise ModelLoadError(
                f"llama.cpp could not load {path!r}: {detail}. The file starts like a GGUF file but is damaged, "
                "truncated (an interrupted download?) or of an architecture this llama.cpp build does not know. "
                "Download or convert it again."
            )
        self.ptr = ptr
        self.vocab = lc.llama_model_get_vocab(ptr)
        self.n_vocab = int(lc.llama_vocab_n_tokens(self.vocab))
        self.adapter = None
        if lora:
            self.adapter = self._load_lora(lora)
        self._piece_cache: dict[int, bytes] = {}
        self._eog_cache: dict[int, bool] = {}

    def _load_lora(self, path: str) -> ctypes.c_void_p:
        check_gguf_file(path)
        adapter = lc.llama_adapter_lora_init(self.ptr, path.encode())
        raise_if_interrupted()
        if not adapter:
            detail = recent_errors()
            raise ModelLoadError(
                f"llama.cpp could not load the LoRA adapter {path!r}: {detail}. It must be a LoRA GGUF "
                "written for this base model (ozfig convert --adapter-only writes one)."
            )
        return adapter  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.adapter is not None:
            lc.llama_adapter_lora_free(self.adapter)
            self.adapter = None
        if self.ptr:
            lc.llama_model_free(self.ptr)
            self.ptr = None

    # --- metadata ---------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        size = 1 << 16
        while True:
            buf = ctypes.create_string_buffer(size)
            n = lc.llama_model_meta_val_str(self.ptr, key.encode(), buf, size)
            if n < 0:
                return None
            if n < size:
                return buf.value.decode("utf-8", "replace")
            size = n + 1

    @property
    def chat_template(self) -> str | None:
        return self.meta("tokenizer.chat_template")

    @property
    def name(self) -> str:
        return self.meta("general.name") or os.path.basename(self.path)

    @property
    def n_ctx_train(self) -> int:
        return int(lc.llama_model_n_ctx_train(self.ptr))

    @property
    def description(self) -> str:
        buf = ctypes.create_string_buffer(256)
        lc.llama_model_desc(self.ptr, buf, 256)
        return buf.value.decode("utf-8", "replace")

    @property
    def add_bos(self) -> bool:
        return bool(lc.llama_vocab_get_add_bos(self.vocab))

    @property
    def bos(self) -> int:
        return int(lc.llama_vocab_bos(self.vocab))

    @property
    def eos(self) -> int:
        return int(lc.llama_vocab_eos(self.vocab))

    @property
    def add_eos(self) -> bool:
        return bool(lc.llama_vocab_get_add_eos(self.vocab))

    def is_eog(self, token: int) -> bool:
        """Whether `token` ends a generation (cached per token id: asked once per generated token)."""
        eog = self._eog_cache.get(token)
        if eog is None:
            eog = self._eog_cache[token] = bool(lc.llama_vocab_is_eog(self.vocab, token))
        return eog

    def is_control(self, token: int) -> bool:
        return bool(lc.llama_vocab_is_control(self.vocab, token))

    def token_text(self, token: int) -> str:
        return lc.llama_vocab_get_text(self.vocab, token).decode("utf-8", "replace")  # type: ignore[no-any-return]

    def control_tokens(self) -> list[tuple[int, str, bool, bool]]:
        """(id, text, lstrip, rstrip) of every control token: the ones special-token parsing finds in text."""
        out = []
        for token in range(self.n_vocab):
            attr = int(lc.llama_vocab_get_attr(self.vocab, token))
            if attr & lc.LLAMA_TOKEN_ATTR_CONTROL:
                text = self.token_text(token)
                if text:
                    lstrip = bool(attr & lc.LLAMA_TOKEN_ATTR_LSTRIP)
                    out.append((token, text, lstrip, bool(attr & lc.LLAMA_TOKEN_ATTR_RSTRIP)))
        return out

    # --- text <-> tokens --------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]:
        """Tokens of `text`. With parse_special off, `<|im_start|>` in the text is plain text."""
        data = text.encode("utf-8")
        n_max = len(data) + 8
        while True:
            arr = (lc.llama_token * n_max)()
            n = lc.llama_tokenize(self.vocab, data, len(data), arr, n_max, add_special, parse_special)
            if n >= 0:
                return list(arr[:n])
            n_max = -n

    def piece(self, token: int) -> bytes:
        """The bytes a generated token stands for (control tokens render as nothing)."""
        cached = self._piece_cache.get(token)
        if cached is not None:
            return cached
        # a buffer of its own per call: the engine thread and the event loop ask at once, and
        # llama.cpp writes into it with the GIL released
        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        out = buf.raw[:n]
        self._piece_cache[token] = out
        return out

    def detokenize(self, tokens: list[int], *, unparse_special: bool = False) -> str:
        """The text of `tokens`; control tokens render as nothing unless `unparse_special`."""
        if not unparse_special:
            return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")
        size = 16 * len(tokens) + 64
        arr = (lc.llama_token * len(tokens))(*tokens)
        while True:
            buf = ctypes.create_string_buffer(size)
            n = lc.llama_detokenize(self.vocab, arr, len(tokens), buf, size, False, True)
            if n >= 0:
                return buf.raw[:n].decode("utf-8", "replace")
            size = -n

    # --- contexts ---------------------------------------------------------------------

    def new_context(self, p: ContextParams) -> Context:
        cp = lc.llama_context_default_params()
        cp.n_ctx = p.n_ctx
        cp.n_batch = p.n_batch
        cp.n_ubatch = p.n_batch
        cp.n_seq_max = p.n_seq
        cp.kv_unified = p.kv_unified
        threads = p.threads or available_cpus().count  # the CPUs this process may run on
        cp.n_threads = threads
        cp.n_threads_batch = threads
        cp.embeddings = p.embeddings
        if p.flash_attention is not None:
            cp.flash_attn_type = (
                lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if p.flash_attention else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
        clear_errors()
        ctx = lc.llama_init_from_model(self.ptr, cp)
        raise_if_interrupted()
        if not ctx:
            detail = recent_errors()
            raise ModelLoadError(
                f"llama.cpp could not create a context of {p.n_ctx} tokens: {detail}. "
                "Lower --ctx or --slots, or offload fewer layers."
            )
        if self.adapter is not None:
            adapters = (lc.llama_adapter_lora_p_ctypes * 1)(self.adapter)  # type: ignore[misc]
            scales = (ctypes.c_float * 1)(1.0)
            if lc.llama_set_adapters_lora(ctx, adapters, 1, scales) != 0:
                lc.llama_free(ctx)
                raise ModelLoadError("llama.cpp could not apply the LoRA adapter to the context.")
        return Context(ctx, n_ctx=p.n_ctx, n_seq=p.n_seq, n_vocab=self.n_vocab)
