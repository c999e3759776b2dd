"""Proof 4: llama.cpp tokenizes like the `tokenizers` library on our GGUF; the fine-tune's chat files win."""

import json

import llama_cpp
import pytest
from tokenizers import Tokenizer

from tests.convert.conftest import Tiny, ozfig
from tests.support import tiny_checkpoint as tc

TEXTS = [
    tc.CHECK_TEXT,
    "def f(x):\n\treturn [x ** 2 for x in range(10)]  # 3.14159, 1234567, 00042\r\n",
    "I'VE been told he's there; 'RE you sure?  Ünïcödé —  ✅🦙😶‍🌫️ 我想在apple工作1314151天～",
    "   leading spaces\n\n\n   and trailing   ",
]


@pytest.fixture(scope="module")
def vocab_model(tiny: Tiny):
    gguf = tiny.convert(
        "merged-f32", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--quant", "F32"
    )
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    yield llm
    llm.close()


@pytest.mark.parametrize("text", TEXTS)
def test_llama_cpp_tokenizes_like_the_tokenizers_library(tiny: Tiny, vocab_model, text: str) -> None:
    reference = Tokenizer.from_file(str(tiny.adapter / "tokenizer.json"))
    with_bos = reference.encode(text, add_special_tokens=True).ids
    without = reference.encode(text, add_special_tokens=False).ids
    assert vocab_model.tokenize(text.encode(), add_bos=True, special=True) == with_bos
    assert vocab_model.tokenize(text.encode(), add_bos=False, special=True) == without
    assert vocab_model.detokenize(without, special=True).decode("utf-8") == text


def test_the_fine_tunes_chat_template_and_end_of_turn_win(tiny: Tiny) -> None:
    gguf = tiny.convert(
        "merged-f32", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--quant", "F32"
    )
    info = json.loads(ozfig("inspect", "--json", str(gguf)).stdout)
    end_of_text = tiny.config["eos_token_id"]
    assert info["chat_template"] == tc.CHATML_TEMPLATE
    assert info["tokenizer"]["special"]["eos"] == {"id": end_of_text, "text": "<|im_end|>"}
    assert info["tokenizer"]["add_bos"] is True
    assert (info["tokenizer"]["model"], info["tokenizer"]["pre"]) == ("gpt2", "llama-bpe")
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        assert llm.token_eos() == end_of_text
        assert llm.tokenize(b"<|im_start|>", add_bos=False, special=True) == [
            tiny.tok_json["added_tokens"][2]["id"]
        ]
    finally:
        llm.close()
    # --tokenizer takes the base's files instead: its own end-of-text, no template
    base_tok = tiny.convert(
        "merged-basetok",
        "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--tokenizer", str(tiny.base), "--quant", "F16",
    )  # fmt: skip
    info = json.loads(ozfig("inspect", "--json", str(base_tok)).stdout)
    assert info["chat_template"] is None
    assert info["tokenizer"]["special"]["eos"] == {"id": end_of_text, "text": "<|end_of_text|>"}


def test_an_adapter_with_chat_settings_but_no_tokenizer_json(tiny: Tiny) -> None:
    """The base's vocabulary, the adapter's template and special tokens."""
    adapter = tiny.make_adapter(
        "adapter-settings-only", tc.adapter_config(), tc.adapter_weights(tiny.shape), False
    )
    settings = tc.tokenizer_config(
        tiny.tok_json, eos="<|reserved_special_token_1|>", template=tc.CHATML_TEMPLATE
    )
    (adapter / "tokenizer_config.json").write_text(json.dumps(settings))
    out = tiny.convert("settings-only", "--base", str(tiny.base), "--adapter", str(adapter), "--quant", "F16")
    info = json.loads(ozfig("inspect", "--json", str(out)).stdout)
    assert info["chat_template"] == tc.CHATML_TEMPLATE
    assert info["tokenizer"]["special"]["eos"]["text"] == "<|reserved_special_token_1|>"
