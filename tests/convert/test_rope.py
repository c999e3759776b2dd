"""Proof 3: `rope_freqs` for Llama 3.1's real rope_scaling equals the reference values."""

import json

import gguf
import numpy as np
import torch

from tests.convert.conftest import Tiny
from tests.support import tiny_checkpoint as tc


def test_rope_freqs_for_llama_3_1_rope_scaling_match_transformers(tiny: Tiny) -> None:
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    # Llama 3.1 8B's attention geometry that matters here: head_dim 128, theta 500000, its rope_scaling
    shape = tc.Shape(
        hidden=256, heads=2, kv_heads=1, max_positions=131072, rope_scaling=dict(tc.LLAMA31_ROPE)
    )
    folder = tiny.root / "llama31-rope"
    config = tc.base_config(shape, tiny.tok_json)
    tc.write_checkpoint(folder, config, tc.base_weights(shape, seed=5), shards=1)
    tc.write_tokenizer(folder, tiny.tok_json, eos="<|end_of_text|>", template=None)
    out = tiny.convert("llama31-rope", "--base", str(folder), "--quant", "F32")

    tensors = {t.name: t for t in gguf.GGUFReader(out).tensors}
    ours = np.asarray(tensors["rope_freqs.weight"].data, dtype=np.float32)
    assert tensors["rope_freqs.weight"].tensor_type == gguf.GGMLQuantizationType.F32

    hf = LlamaConfig.from_dict(json.loads((folder / "config.json").read_text()))
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](hf, "cpu")
    dim = 128
    plain = 1.0 / (500000.0 ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    reference = (plain / scaled).numpy()  # llama.cpp divides each frequency by its factor

    assert ours.shape == (dim // 2,)
    np.testing.assert_allclose(ours, reference, rtol=2e-6)
    # all three regimes of Llama 3.1's scaling are present: kept, blended, divided by 8
    assert (ours == 1.0).sum() > 10 and (ours == 8.0).sum() > 10
    assert ((ours > 1.0) & (ours < 8.0)).sum() >= 3
