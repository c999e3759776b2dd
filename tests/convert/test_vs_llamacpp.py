"""Proof 2: our F16 GGUF equals the one llama.cpp's own convert_hf_to_gguf.py writes."""

import subprocess

import gguf
import numpy as np
import pytest

from tests.convert.conftest import Tiny
from tests.support import tiny_checkpoint as tc
from tests.support.llama_cpp_converter import converter_command, converter_dir

# general.* keys llama.cpp reads when it loads a model (name and size label are only shown)
READ_GENERAL = ("general.architecture", "general.file_type", "general.quantization_version", "general.type")


def _llama_cpp_keys(fields: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in fields.items() if k.startswith(("llama.", "tokenizer.")) or k in READ_GENERAL}


def _read(path) -> tuple[dict[str, gguf.ReaderTensor], dict[str, object]]:
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    return tensors, fields


@pytest.fixture(scope="module")
def reference_f16(tiny: Tiny, merged_state) -> tuple:
    try:
        converter_dir()
    except (subprocess.SubprocessError, OSError, RuntimeError, StopIteration) as exc:
        pytest.skip(
            f"llama.cpp's convert_hf_to_gguf.py could not be fetched (pip download of the sdist): {exc}"
        )
    merged = tiny.root / "merged-hf"
    tc.write_merged_checkpoint(merged, tiny.config, merged_state, tiny.adapter)
    (merged / "generation_config.json").write_bytes((tiny.base / "generation_config.json").read_bytes())
    out = tiny.root / "llama-cpp-reference.f16.gguf"
    proc = subprocess.run(converter_command(merged, out, "f16"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return merged, out


def test_f16_of_the_merged_checkpoint_is_identical_to_llama_cpp_converters(tiny: Tiny, reference_f16) -> None:
    merged, reference = reference_f16
    ours = tiny.convert("merged-hf-f16", "--base", str(merged), "--quant", "F16")
    ref_tensors, ref_fields = _read(reference)
    our_tensors, our_fields = _read(ours)
    assert sorted(our_tensors) == sorted(ref_tensors)
    assert "rope_freqs.weight" in our_tensors
    for name, ref in ref_tensors.items():
        mine = our_tensors[name]
        assert mine.tensor_type == ref.tensor_type, name
        assert list(mine.shape) == list(ref.shape), name
        assert np.asarray(mine.data).tobytes() == np.asarray(ref.data).tobytes(), name
    assert _llama_cpp_keys(our_fields) == _llama_cpp_keys(ref_fields)
    assert our_fields["tokenizer.chat_template"] == tc.CHATML_TEMPLATE


def test_base_plus_adapter_f16_is_within_one_f16_step_of_the_reference(tiny: Tiny, reference_f16) -> None:
    """Merging ourselves (numpy) and in torch round differently in the last float32 bit, rarely."""
    _, reference = reference_f16
    ours = tiny.convert(
        "merged-F16", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--quant", "F16"
    )
    ref_tensors, ref_fields = _read(reference)
    our_tensors, our_fields = _read(ours)
    assert sorted(our_tensors) == sorted(ref_tensors)
    differing = 0
    total = 0
    for name, ref in ref_tensors.items():
        a = np.asarray(our_tensors[name].data)
        b = np.asarray(ref.data)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if a.dtype == np.float16:
            steps = np.abs(a.view(np.int16).astype(np.int32) - b.view(np.int16).astype(np.int32))
            assert steps.max() <= 1, name
            differing += int((steps > 0).sum())
        else:
            assert np.array_equal(a, b), name
        total += a.size
    assert differing <= total * 1e-3
    assert _llama_cpp_keys(our_fields) == _llama_cpp_keys(ref_fields)
