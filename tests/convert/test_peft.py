"""The proof is peft itself: every adapter layout the real `peft` library writes converts to peft's merge.

Each cell makes an adapter with `get_peft_model` on a tiny random Llama saved by
transformers (`init_lora_weights=False`, so every factor is random), saves it with
`save_pretrained`, and merges it with `merge_and_unload()`. Then:

- `ozfig convert --quant F32` holds the merged tensors, tensor by tensor (relative error
  ≤ 1e-5; Q/K rows in llama.cpp's order, permuted here as llama.cpp's converter does);
- llama.cpp computes transformers' logits with that GGUF (≤ 1e-4);
- `ozfig convert --adapter-only` either gives the same logits applied at load time on the
  base GGUF, or is refused with a message that says why (DoRA, whole tensors, a tied output).

For a tied base the reference is the unmerged `PeftModel` (peft's own merge adds lm_head's
delta into the shared embedding matrix; ozfig unties the output layer instead). One more
cell runs Llama 3's real 128k vocabulary and a real `ozfig serve --lora`.
"""

# llama_cpp first, as in the real entry point (see ozfig/cli.py)
import llama_cpp  # noqa: I001

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from convert.gguf_index import read_tensor_index
from tests.convert.conftest import Tiny, assert_refused, llama_logits, ozfig, rel_err
from tests.support import peft_adapters as pa
from tests.support import tiny_checkpoint as tc
from tests.support.processes import serving

PROJ = pa.PROJECTIONS
CELLS = [
    pa.Cell("projections", {"r": 8, "lora_alpha": 16, "target_modules": PROJ}),
    pa.Cell(
        "rslora-patterns",
        {
            "r": 8,
            "lora_alpha": 16,
            "use_rslora": True,
            "target_modules": PROJ,
            # by short name and by full module name, as peft matches them
            "rank_pattern": {"q_proj": 4, "model.layers.1.mlp.down_proj": 2},
            "alpha_pattern": {"v_proj": 32, "model.layers.0.self_attn.o_proj": 5},
        },
    ),
    pa.Cell("embeddings", {"r": 8, "lora_alpha": 8, "target_modules": [*PROJ, "embed_tokens", "lm_head"]}),
    pa.Cell(
        "modules-to-save",
        {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "modules_to_save": ["lm_head"]},
        adapter_only_refusal=("whole tensors", "modules_to_save"),
    ),
    pa.Cell(
        "added-tokens",
        {"r": 8, "lora_alpha": 16, "target_modules": [*PROJ, "embed_tokens", "lm_head"]},
        added_tokens=("<tool_call>", "ozfigword"),
        adapter_only_refusal=("resized the vocabulary",),
    ),
    pa.Cell("named-adapter", {"r": 8, "lora_alpha": 4, "target_modules": PROJ}, adapter_name="ozfig"),
    pa.Cell(
        "tied-lm-head",
        {"r": 8, "lora_alpha": 16, "target_modules": [*PROJ, "lm_head"]},
        tied=True,
        adapter_only_refusal=("ties to the embeddings",),
    ),
    pa.Cell(
        "dora",
        {"r": 8, "lora_alpha": 16, "use_dora": True, "target_modules": [*PROJ, "embed_tokens", "lm_head"]},
        adapter_only_refusal=("DoRA", "without --adapter-only"),
    ),
]
TEXT = tc.CHECK_TEXT  # code, numbers, unicode, emoji, whitespace runs; the tokenizer adds BOS
ADDED_TEXT = TEXT + " call <tool_call> then ozfigword, again:<tool_call>ozfigword"


@dataclass
class Bases:
    """The tiny peft bases (untied and tied), their float GGUFs, and cached conversions."""

    root: Path
    untied: Path
    tied: Path
    _gguf: dict[str, Path] = field(default_factory=dict)

    def folder(self, cell: pa.Cell) -> Path:
        return self.tied if cell.tied else self.untied

    def convert(self, name: str, *args: str) -> Path:
        if name not in self._gguf:
            out = self.root / f"{name}.gguf"
            proc = ozfig("convert", *args, "--out", str(out), "--no-progress")
            assert proc.returncode == 0, proc.stderr
            self._gguf[name] = out
        return self._gguf[name]

    def base_gguf(self, cell: pa.Cell) -> Path:
        base = self.folder(cell)
        return self.convert(f"base-{base.name}", "--base", str(base), "--quant", "F32")


def _vocab_size(tok_json: dict[str, Any]) -> int:
    ids = [*tok_json["model"]["vocab"].values(), *(t["id"] for t in tok_json["added_tokens"])]
    return max(ids) + 1


@pytest.fixture(scope="module")
def bases(tiny: Tiny, tmp_path_factory: pytest.TempPathFactory) -> Bases:
    root = tmp_path_factory.mktemp("peft")
    ids = {e["content"]: e["id"] for e in tiny.tok_json["added_tokens"]}
    vocab = _vocab_size(tiny.tok_json)  # no spare rows: added tokens must grow the embeddings
    folders = []
    for tied in (False, True):
        folder = root / ("base-tied" if tied else "base")
        config = pa.llama_config(
            tiny.shape, vocab, ids["<|begin_of_text|>"], ids["<|end_of_text|>"], tied=tied
        )
        pa.make_base(folder, config, seed=3 if tied else 2)
        tc.write_tokenizer(folder, tiny.tok_json, eos="<|end_of_text|>", template=tc.CHATML_TEMPLATE)
        folders.append(folder)
    return Bases(root, folders[0], folders[1])


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's converter's Q/K row order (LlamaModel.permute in convert_hf_to_gguf.py)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def expected_gguf_tensors(merged: dict[str, np.ndarray], config: dict[str, Any]) -> dict[str, np.ndarray]:
    """peft's merged tensors under llama.cpp's names and in its Q/K row order."""
    n_layer = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    out: dict[str, np.ndarray] = {}
    for hf, value in merged.items():
        if hf.endswith("rotary_emb.inv_freq"):
            continue
        name = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf
        if hf.endswith("q_proj.weight"):
            value = _permute(value, config["num_attention_heads"])
        elif hf.endswith("k_proj.weight"):
            value = _permute(value, config["num_key_value_heads"])
        out[name] = value
    return out


def gguf_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of an F32 GGUF (located with convert.gguf_index: gguf's reader is slow on 128k tokens)."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for t in read_tensor_index(path):
        assert t.qtype == gguf.GGMLQuantizationType.F32, (t.name, t.qtype)
        out[t.name] = np.array(data[t.offset : t.offset + t.nbytes].view(np.float32).reshape(t.shape))
    return out


def assert_tensors_equal_peft(out: Path, merged: dict[str, np.ndarray], config: dict[str, Any]) -> None:
    got = gguf_tensors(out)
    want = expected_gguf_tensors(merged, config)
    assert set(got) - {"rope_freqs.weight"} == set(want)
    worst = {}
    for name, ref in want.items():
        assert got[name].shape == ref.shape, (name, got[name].shape, ref.shape)
        worst[name] = float(np.abs(got[name] - ref).max() / max(np.abs(ref).max(), 1e-30))
    bad = {k: v for k, v in worst.items() if v > 1e-5}
    assert not bad, bad


@pytest.mark.parametrize("cell", CELLS, ids=[c.name for c in CELLS])
def test_peft_adapter_converts_to_what_peft_merges(bases: Bases, cell: pa.Cell) -> None:
    base = bases.folder(cell)
    text = ADDED_TEXT if cell.added_tokens else TEXT
    result = pa.make_adapter(base, cell, bases.root / f"adapter-{cell.name}", text)
    assert (
        rel_err(result.base_logits[:, : result.logits.shape[1]], result.logits) > 1e-2
    )  # the adapter matters
    config = json.loads((base / "config.json").read_text())

    # merged, F32: peft's tensors and transformers' logits
    merged = bases.convert(
        f"merged-{cell.name}", "--base", str(base), "--adapter", str(result.adapter), "--quant", "F32"
    )
    assert_tensors_equal_peft(merged, result.merged, config)
    got = llama_logits(merged, result.ids)
    assert got.shape == result.logits.shape
    assert rel_err(got, result.logits) <= 1e-4

    if cell.added_tokens:
        # the adapter's tokenizer ships with it, and llama.cpp splits the text into the same ids
        assert sorted(result.added_ids.values()) == list(range(config["vocab_size"], result.vocab_size))
        assert all(i in result.ids for i in result.added_ids.values())
        llm = llama_cpp.Llama(model_path=str(merged), vocab_only=True, verbose=False)
        try:
            assert llm.tokenize(text.encode(), add_bos=True, special=True) == result.ids
        finally:
            llm.close()
        # without its tokenizer the adapter still converts, with a warning that the new rows go unused
        bare = bases.root / "adapter-added-tokens-bare"
        bare.mkdir()
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            (bare / name).write_bytes((result.adapter / name).read_bytes())
        out = bases.root / "added-tokens-bare.gguf"
        proc = ozfig(
            "convert", "--base", str(base), "--adapter", str(bare), "--quant", "F32", "--out", str(out)
        )
        assert proc.returncode == 0, proc.stderr
        assert "holds no tokenizer.json" in proc.stderr and "--tokenizer" in proc.stderr

    # the adapter GGUF: applied at load time, or refused clearly
    lora = bases.root / f"lora-{cell.name}.gguf"
    proc = ozfig(
        "convert", "--base", str(base), "--adapter", str(result.adapter), "--adapter-only",
        "--quant", "F32", "--out", str(lora), "--no-progress",
    )  # fmt: skip
    if cell.adapter_only_refusal:
        assert_refused(proc, *cell.adapter_only_refusal)
        assert not lora.exists()
        return
    assert proc.returncode == 0, proc.stderr
    applied = llama_logits(bases.base_gguf(cell), result.ids, lora=lora)
    assert rel_err(applied, result.logits) <= 1e-4


# --- Llama 3's real vocabulary, served -----------------------------------------------------------------


def _llama3_base(root: Path) -> Path:
    """A tiny random Llama with Llama 3.1's tokenizer (128,256 tokens) and its chat template."""
    from tests.support.chat_templates import BY_NAME
    from tests.support.llama3_tokenizer import llama3_tokenizer_path

    tok_json = json.loads(llama3_tokenizer_path().read_text(encoding="utf-8"))
    # Llama 3.2's file adds <|image|> (id 128256) for its vision models; the text models have 128,256 rows
    tok_json["added_tokens"] = [t for t in tok_json["added_tokens"] if t["id"] < 128256]
    folder = root / "llama3-base"
    shape = tc.Shape(hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2)
    pa.make_base(folder, pa.llama_config(shape, 128256, 128000, 128009, tied=False), seed=5)
    tc.write_tokenizer(folder, tok_json, eos="<|eot_id|>", template=BY_NAME["llama-3.1-instruct"].source)
    return folder


def _chat(base_url: str, text: str) -> str:
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": 12, "temperature": 0}
    req = urllib.request.Request(
        base_url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        answer: str = json.loads(resp.read())["choices"][0]["message"]["content"]
    return answer


def test_llama3_vocabulary_adapter_served_with_lora(bases: Bases) -> None:
    base = _llama3_base(bases.root)
    cell = pa.Cell("llama3", {"r": 8, "lora_alpha": 16, "target_modules": [*PROJ, "lm_head"]})
    result = pa.make_adapter(base, cell, bases.root / "adapter-llama3", tc.CHECK_TEXT)
    assert result.logits.shape[1] == 128256
    config = json.loads((base / "config.json").read_text())
    merged = bases.convert(
        "merged-llama3", "--base", str(base), "--adapter", str(result.adapter), "--quant", "F32"
    )
    assert_tensors_equal_peft(merged, result.merged, config)
    assert rel_err(llama_logits(merged, result.ids), result.logits) <= 1e-4

    base_gguf = bases.convert("base-llama3", "--base", str(base), "--quant", "F32")
    lora = bases.convert(
        "lora-llama3",
        "--base",
        str(base),
        "--adapter",
        str(result.adapter),
        "--adapter-only",
        "--quant",
        "F32",
    )
    assert rel_err(llama_logits(base_gguf, result.ids, lora=lora), result.logits) <= 1e-4

    # a real server with the adapter answers like the merged model (greedy)
    common = ("--ctx", "512", "--slots", "1", "--threads", "2", "--search-url", "http://127.0.0.1:9/")
    question = "What is a llama? Answer in one word."
    with serving("--model", str(base_gguf), "--lora", str(lora), *common) as url:
        with_lora = _chat(url, question)
    with serving("--model", str(merged), *common) as url:
        merged_answer = _chat(url, question)
    assert with_lora and with_lora == merged_answer


def test_older_modules_to_save_spellings_convert_alike(bases: Bases) -> None:
    """The same peft adapter with lm_head's copy under the names earlier peft releases used."""
    from safetensors.numpy import load_file, save_file

    cell = next(c for c in CELLS if c.name == "modules-to-save")
    result = pa.make_adapter(bases.untied, cell, bases.root / "adapter-mts", TEXT)
    config = json.loads((bases.untied / "config.json").read_text())
    for spelling in ("modules_to_save.default", "modules_to_save"):
        folder = bases.root / f"adapter-mts-{spelling}"
        folder.mkdir()
        (folder / "adapter_config.json").write_bytes((result.adapter / "adapter_config.json").read_bytes())
        weights = load_file(str(result.adapter / "adapter_model.safetensors"))
        head = weights.pop("base_model.model.lm_head.weight")
        weights[f"base_model.model.lm_head.{spelling}.weight"] = head
        weights["base_model.model.lm_head.original_module.weight"] = np.zeros_like(
            head
        )  # the frozen original
        save_file(weights, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
        out = bases.convert(
            f"mts-{spelling}", "--base", str(bases.untied), "--adapter", str(folder), "--quant", "F32"
        )
        assert_tensors_equal_peft(out, result.merged, config)
