"""Fixtures for the convert tests: the tiny checkpoint and adapter, conversions done once, references."""

# llama_cpp first, as in the real entry point (see ozfig/cli.py)
import llama_cpp  # noqa: I001

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ozfig.llama.backend import cpu_has_amx
from tests.support import tiny_checkpoint as tc
from tests.support.exact_rotary import exact_rotary


def ozfig(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real `ozfig` command."""
    return subprocess.run(
        [sys.executable, "-m", "ozfig", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_refused(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A refusal: non-zero exit, one `ozfig: error:` line with the fragments, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "ozfig: error:" in proc.stderr, proc.stderr
    text = proc.stderr.lower()
    for fragment in fragments:
        assert fragment.lower() in text, (fragment, proc.stderr)


@dataclass
class Tiny:
    root: Path
    shape: tc.Shape
    tok_json: dict[str, Any]
    base: Path
    adapter: Path
    config: dict[str, Any]
    weights: dict[str, np.ndarray]
    _cache: dict[str, Path] = field(default_factory=dict)

    def make_adapter(
        self, name: str, config: dict[str, Any], weights: dict[str, np.ndarray], tokenizer: bool = True
    ) -> Path:
        folder = self.root / name
        if not folder.exists():
            tc.write_adapter(
                folder, config, weights, tc.chatml_tokenizer_json(self.tok_json) if tokenizer else None
            )
        return folder

    def convert(self, name: str, *args: str) -> Path:
        """`ozfig convert ... --out <root>/<name>.gguf` once per name; the path of the result."""
        if name not in self._cache:
            out = self.root / f"{name}.gguf"
            proc = ozfig("convert", *args, "--out", str(out), "--no-progress")
            assert proc.returncode == 0, proc.stderr
            assert out.is_file()
            self._cache[name] = out
        return self._cache[name]

    def adapter_gguf(self) -> Path:
        """The test adapter as a llama.cpp LoRA GGUF (F32)."""
        return self.convert(
            "lora-f32",
            "--base",
            str(self.base),
            "--adapter",
            str(self.adapter),
            "--adapter-only",
            "--quant",
            "F32",
        )


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    root = tmp_path_factory.mktemp("tiny")
    shape = tc.Shape()
    tok_json = tc.build_tokenizer_json()
    config = tc.base_config(shape, tok_json)
    weights = tc.base_weights(shape)
    base = root / "base"
    tc.write_checkpoint(base, config, weights)
    tc.write_tokenizer(base, tok_json, eos="<|end_of_text|>", template=None)
    gen = {
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": config["eos_token_id"],
        "temperature": 0.6,
        "top_p": 0.9,
    }
    (base / "generation_config.json").write_text(json.dumps(gen))
    adapter = root / "adapter"
    tc.write_adapter(
        adapter, tc.adapter_config(), tc.adapter_weights(shape), tc.chatml_tokenizer_json(tok_json)
    )
    return Tiny(root, shape, tok_json, base, adapter, config, weights)


@pytest.fixture(scope="session")
def check_ids(tiny: Tiny) -> list[int]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny.adapter / "tokenizer.json"))
    ids: list[int] = tok.encode(tc.CHECK_TEXT, add_special_tokens=True).ids
    return ids


def reference_logits(config: dict[str, Any], state: dict[str, Any], ids: list[int]) -> np.ndarray:
    """A `transformers` CPU forward pass of LlamaForCausalLM with `state`, in float64, its
    rotary angles too (tests/support/exact_rotary.py says why)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig.from_dict(dict(config, torch_dtype="float64"))
    cfg._attn_implementation = "eager"
    model = LlamaForCausalLM(cfg).double().eval()
    model.load_state_dict({k: v.double() for k, v in state.items()}, strict=True)
    exact_rotary(model)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
    return np.asarray(logits, dtype=np.float32)


@pytest.fixture(scope="session")
def merged_state(tiny: Tiny) -> dict[str, Any]:
    return tc.merged_state_dict(tiny.weights, tiny.adapter)


@pytest.fixture(scope="session")
def merged_logits(tiny: Tiny, merged_state: dict[str, Any], check_ids: list[int]) -> np.ndarray:
    return reference_logits(tiny.config, merged_state, check_ids)


@contextmanager
def _no_extra_weight_buffers() -> Iterator[None]:
    """Load without llama.cpp's extra weight buffers on CPUs with AMX tiles, as ozfig's engine does.

    llama.cpp's AMX mul_mat (picked for quantized weights on such CPUs) crashes the process
    on the first decode; `llama_cpp.Llama` has no argument for `use_extra_bufts`, so its
    default parameters are adjusted while it loads.
    """
    if not cpu_has_amx():
        yield
        return
    module = llama_cpp.llama_cpp
    original = module.llama_model_default_params

    def without() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    module.llama_model_default_params = without
    try:
        yield
    finally:
        module.llama_model_default_params = original


def llama_logits(model: Path, ids: list[int], lora: Path | None = None) -> np.ndarray:
    """llama.cpp's logits for every position, with F32 KV cache (no rounding of its own)."""
    with _no_extra_weight_buffers():
        llm = _load_llama(model, lora)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


def _load_llama(model: Path, lora: Path | None) -> llama_cpp.Llama:
    return llama_cpp.Llama(
        model_path=str(model),
        lora_path=str(lora) if lora else None,
        n_ctx=256,
        n_batch=256,
        n_ubatch=256,
        logits_all=True,
        n_threads=2,
        type_k=llama_cpp.GGML_TYPE_F32,
        type_v=llama_cpp.GGML_TYPE_F32,
        verbose=False,
    )


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).max() / np.abs(ref).max())
