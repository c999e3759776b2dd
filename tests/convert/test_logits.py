"""Proofs 1 and 5: llama.cpp on our GGUF computes what `transformers` computes for the merged model."""

import json

import numpy as np
import torch

from tests.convert.conftest import Tiny, llama_logits, ozfig, reference_logits, rel_err
from tests.support import tiny_checkpoint as tc


def test_f32_gguf_matches_transformers_forward_of_the_merged_model(
    tiny: Tiny, check_ids, merged_logits
) -> None:
    gguf = tiny.convert(
        "merged-f32", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--quant", "F32"
    )
    got = llama_logits(gguf, check_ids)
    assert got.shape == merged_logits.shape
    assert rel_err(got, merged_logits) <= 1e-4
    # the adapter matters: the base model's logits are far from the merged model's
    base_only = reference_logits(
        tiny.config, {k: torch.from_numpy(v) for k, v in tiny.weights.items()}, check_ids
    )
    assert rel_err(base_only, merged_logits) > 1e-2


def test_adapter_gguf_applied_at_load_time_matches_the_merged_model(
    tiny: Tiny, check_ids, merged_logits
) -> None:
    base = tiny.convert("base-f32", "--base", str(tiny.base), "--quant", "F32")
    lora = tiny.adapter_gguf()
    assert rel_err(llama_logits(base, check_ids, lora=lora), merged_logits) <= 1e-4
    # the default adapter type is F16: still close to the merged model
    lora16 = tiny.convert(
        "lora-f16", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--adapter-only"
    )
    assert rel_err(llama_logits(base, check_ids, lora=lora16), merged_logits) <= 2e-3


def assert_merged_and_adapter_gguf_match(
    tiny: Tiny, adapter, name: str, ref: np.ndarray, check_ids: list[int]
) -> None:
    """Merged into an F32 GGUF, and applied at load time as a LoRA GGUF: both give `ref`."""
    merged = tiny.convert(
        f"{name}-f32", "--base", str(tiny.base), "--adapter", str(adapter), "--quant", "F32"
    )
    assert rel_err(llama_logits(merged, check_ids), ref) <= 1e-4
    base = tiny.convert("base-f32", "--base", str(tiny.base), "--quant", "F32")
    lora = tiny.convert(
        f"{name}-lora",
        "--base",
        str(tiny.base),
        "--adapter",
        str(adapter),
        "--adapter-only",
        "--quant",
        "F32",
    )
    assert rel_err(llama_logits(base, check_ids, lora=lora), ref) <= 1e-4


def _pattern_adapter(tiny: Tiny):
    ranks = {"q_proj": 8, "down_proj": 4}
    cfg = tc.adapter_config(
        use_rslora=False,
        rank_pattern={"q_proj": 8, "down_proj": 4},
        alpha_pattern={"model.layers.1.mlp.up_proj": 64, "v_proj": 4},
        lora_alpha=32,
    )
    return tiny.make_adapter("adapter-patterns", cfg, tc.adapter_weights(tiny.shape, ranks=ranks, seed=7))


def test_rank_and_alpha_patterns_merge_and_fold_into_the_adapter_gguf(tiny: Tiny, check_ids) -> None:
    adapter = _pattern_adapter(tiny)
    ref = reference_logits(tiny.config, tc.merged_state_dict(tiny.weights, adapter), check_ids)
    assert_merged_and_adapter_gguf_match(tiny, adapter, "patterns", ref, check_ids)


def test_modules_to_save_and_resized_embeddings_are_taken_whole(tiny: Tiny, check_ids) -> None:
    rows = tiny.shape.vocab + 32  # the fine-tune grew the vocabulary
    rng = np.random.default_rng(11)
    weights = tc.adapter_weights(tiny.shape, seed=12)
    embed = rng.normal(0, 1.0, (rows, tiny.shape.hidden)).astype(np.float32)
    head = rng.normal(0, 0.06, (rows, tiny.shape.hidden)).astype(np.float32)
    weights["base_model.model.model.embed_tokens.weight"] = embed
    weights["base_model.model.lm_head.weight"] = head
    adapter = tiny.make_adapter(
        "adapter-resized", tc.adapter_config(modules_to_save=["embed_tokens", "lm_head"]), weights
    )
    out = tiny.convert("resized-f32", "--base", str(tiny.base), "--adapter", str(adapter), "--quant", "F32")
    state = tc.merged_state_dict(tiny.weights, adapter)
    state["model.embed_tokens.weight"] = torch.from_numpy(embed)
    state["lm_head.weight"] = torch.from_numpy(head)
    ref = reference_logits(dict(tiny.config, vocab_size=rows), state, check_ids)
    got = llama_logits(out, check_ids)
    assert got.shape == (len(check_ids), rows)
    assert rel_err(got, ref) <= 1e-4
    # such an adapter cannot become a LoRA GGUF: refused, nothing written
    dest = tiny.root / "resized-lora.gguf"
    proc = ozfig(
        "convert", "--base", str(tiny.base), "--adapter", str(adapter), "--adapter-only", "--out", str(dest)
    )
    assert proc.returncode == 2 and "modules_to_save" in proc.stderr
    assert not dest.exists()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_quantized_outputs_load_and_stay_close(tiny: Tiny, check_ids, merged_logits) -> None:
    # random weights make this tiny model touchy: bounds are loose but catch a wrong tensor
    errors = {}
    corr = {}
    for quant in ("BF16", "F16", "Q8_0", "Q4_K_M"):
        out = tiny.convert(
            f"merged-{quant}",
            "--base",
            str(tiny.base),
            "--adapter",
            str(tiny.adapter),
            "--quant",
            quant,
            "--threads",
            "2",
        )
        got = llama_logits(out, check_ids)
        errors[quant] = rel_err(got, merged_logits)
        corr[quant] = _corr(got, merged_logits)
        info = json.loads(ozfig("inspect", "--json", str(out)).stdout)
        assert info["file_type"].endswith(quant if quant != "F16" else "F16"), info["file_type"]
        assert info["chat_template"] == tc.CHATML_TEMPLATE
    assert errors["F16"] <= 5e-3 and errors["BF16"] <= 3e-2
    assert errors["Q8_0"] <= 0.3 and corr["Q8_0"] >= 0.99
    assert corr["Q4_K_M"] >= 0.8
    mix = json.loads(ozfig("inspect", "--json", str(tiny.root / "merged-Q4_K_M.gguf")).stdout)["quant_mix"]
    assert "Q4_K" in mix and "F32" in mix  # llama.cpp's Q4_K_M mix, norms kept in F32


def test_tied_embeddings_and_a_lora_on_the_tied_output(tiny: Tiny, check_ids) -> None:
    """A Llama-3.2-style base: no lm_head tensor, the output layer is the embeddings."""
    folder = tiny.root / "tied-base"
    untied = {k: v for k, v in tiny.weights.items() if k != "lm_head.weight"}
    if not folder.exists():
        tc.write_checkpoint(folder, dict(tiny.config, tie_word_embeddings=True), untied)
        tc.write_tokenizer(folder, tiny.tok_json, eos="<|end_of_text|>", template=None)
    out = tiny.convert("tied-f32", "--base", str(folder), "--adapter", str(tiny.adapter), "--quant", "F32")
    state = tc.merged_state_dict(untied, tiny.adapter)
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    ref = reference_logits(dict(tiny.config, tie_word_embeddings=True), state, check_ids)
    assert rel_err(llama_logits(out, check_ids), ref) <= 1e-4

    # a LoRA on lm_head unties it: output = embeddings + delta
    rng = np.random.default_rng(31)
    weights = tc.adapter_weights(tiny.shape, seed=32)
    weights["base_model.model.lm_head.lora_A.weight"] = rng.normal(0, 0.06, (16, tiny.shape.hidden)).astype(
        np.float32
    )
    weights["base_model.model.lm_head.lora_B.weight"] = rng.normal(0, 0.1, (tiny.shape.vocab, 16)).astype(
        np.float32
    )
    adapter = tiny.make_adapter(
        "adapter-lm-head", tc.adapter_config(target_modules=[*tc.PROJECTIONS, "lm_head"]), weights
    )
    out = tiny.convert("tied-lm-head-f32", "--base", str(folder), "--adapter", str(adapter), "--quant", "F32")
    ref = reference_logits(tiny.config, tc.merged_state_dict(untied, adapter), check_ids)
    assert rel_err(llama_logits(out, check_ids), ref) <= 1e-4


def test_embedding_lora_merges_and_applies_at_load_time(tiny: Tiny, check_ids) -> None:
    rng = np.random.default_rng(21)
    h, v = tiny.shape.hidden, tiny.shape.vocab
    weights = tc.adapter_weights(tiny.shape, seed=22)
    weights["base_model.model.model.embed_tokens.lora_embedding_A"] = rng.normal(0, 1, (16, v)).astype(
        np.float32
    )
    weights["base_model.model.model.embed_tokens.lora_embedding_B"] = rng.normal(0, 0.1, (h, 16)).astype(
        np.float32
    )
    adapter = tiny.make_adapter(
        "adapter-embedding", tc.adapter_config(target_modules=[*tc.PROJECTIONS, "embed_tokens"]), weights
    )
    ref = reference_logits(tiny.config, tc.merged_state_dict(tiny.weights, adapter), check_ids)
    assert_merged_and_adapter_gguf_match(tiny, adapter, "embedding", ref, check_ids)
