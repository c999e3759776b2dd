"""convert.gguf_index finds every tensor where gguf's own reader does, without reading the metadata arrays."""

from pathlib import Path

import gguf
import pytest

from convert.gguf_index import read_tensor_index
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
