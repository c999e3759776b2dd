"""`ozfig inspect`: architecture, sizes, quant mix, tokenizer and chat template of a GGUF."""

import json

from tests.convert.conftest import Tiny, ozfig
from tests.support import tiny_checkpoint as tc


def test_inspect_shows_what_the_model_gguf_holds(tiny: Tiny) -> None:
    gguf = tiny.convert(
        "merged-Q8_0", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--quant", "Q8_0"
    )
    proc = ozfig("inspect", str(gguf))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for fragment in (
        "architecture llama, file type MOSTLY_Q8_0",
        "layers 2, embedding 256, feed-forward 512, heads 4 (KV 2), context 512",
        "llama3 frequency factors (rope_freqs)",
        "quant mix: ",
        "Q8_0 x",
        "F32 x",
        "tokenizer: gpt2/llama-bpe, 768 tokens",
        "eos 621 '<|im_end|>'",
        "chat template:",
        "<|im_start|>",
    ):
        assert fragment in text, (fragment, text)
    info = json.loads(ozfig("inspect", "--json", str(gguf)).stdout)
    assert info["architecture"] == "llama" and info["type"] == "model"
    assert (
        info["tensors"] == 3 + 9 * tiny.shape.layers + 1
    )  # embeddings, output, its norm, 9 per layer, rope_freqs
    assert info["metadata"]["general.sampling.temp"] == 0.6000000238418579  # from generation_config.json
    full = ozfig("inspect", "--template", str(gguf)).stdout
    assert tc.CHATML_TEMPLATE.splitlines()[0] in full


def test_inspect_shows_an_adapter_gguf(tiny: Tiny) -> None:
    lora = tiny.adapter_gguf()
    info = json.loads(ozfig("inspect", "--json", str(lora)).stdout)
    assert info["type"] == "adapter"
    assert info["adapter"] == {"type": "lora", "alpha": 64.0}  # rsLoRA: alpha/sqrt(r) = 4 = 64/r
    assert info["tensors"] == 2 * 7 * tiny.shape.layers
    assert "LoRA adapter" in ozfig("inspect", str(lora)).stdout
