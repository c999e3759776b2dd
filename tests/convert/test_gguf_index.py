"""convert.gguf_index finds every tensor where gguf's own reader does, without reading the metadata arrays."""

from pathlib import Path

import gguf
import pytest

from convert.gguf_index import read_gguf, read_tensor_index
from tests.convert.conftest import Tiny


def _reference(path: Path) -> list[tuple]:
    reader = gguf.GGUFReader(path)
    return [
        (
            t.name,
            tuple(reversed([int(d) for d in t.shape])),
            t.tensor_type,
            int(t.data_offset),
            int(t.n_bytes),
        )
        for t in reader.tensors
    ]


@pytest.mark.parametrize("quant", ["F16", "Q4_K_M"])
def test_tensor_index_equals_gguf_reader(tiny: Tiny, quant: str) -> None:
    model = tiny.convert(
        f"merged-{quant}", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--quant", quant
    )
    for path in (model, tiny.adapter_gguf()):
        got = [(t.name, t.shape, t.qtype, t.offset, t.nbytes) for t in read_tensor_index(path)]
        assert got == _reference(path)


def test_tensor_index_refuses_what_is_not_gguf(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
    with pytest.raises(ValueError):
        read_tensor_index(junk)
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError):
        read_tensor_index(junk)


def test_metadata_equals_gguf_reader(tiny: Tiny) -> None:
    model = tiny.convert(
        "merged-F16", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--quant", "F16"
    )
    reader = gguf.GGUFReader(model)
    want = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    assert read_gguf(model).fields == want
    counted = read_gguf(model, counted=("tokenizer.ggml.tokens", "tokenizer.ggml.merges"))
    assert counted.fields["tokenizer.ggml.tokens"] == len(want["tokenizer.ggml.tokens"])
    assert counted.fields["tokenizer.ggml.merges"] == len(want["tokenizer.ggml.merges"])
    eos = want["tokenizer.ggml.eos_token_id"]
    assert counted.token_text[eos] == want["tokenizer.ggml.tokens"][eos] == "<|im_end|>"
