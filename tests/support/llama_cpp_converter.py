"""llama.cpp's own `convert_hf_to_gguf.py`, the reference the convert tests compare against.

It ships in the llama-cpp-python sdist (vendor/llama.cpp). The sdist is downloaded with pip
(never built or installed) and only the converter's files are unpacked, into a cache
outside git: `$OZFIG_TEST_CACHE` or `~/.cache/ozfig-tests`. A copy already unpacked at
`~/.cache/ozfig-llama.cpp/llama_cpp_python-<version>/vendor/llama.cpp` is used as it is.

`converter_command` runs the script with two adjustments, both about our tiny tokenizer,
not about what is compared: the converter recognizes Llama 3's pre-tokenizer by hashing
the real Llama 3 vocabulary's tokens of a check text, which a 768-token tokenizer cannot
reproduce, so the answer for a recognized Llama 3 ("llama-bpe") is given directly; and
the SentencePiece attempt it makes first is answered with the FileNotFoundError it raises
when there is no tokenizer.model (the `sentencepiece` package is not installed here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.support.model_file import cache_dir

VERSION = "0.3.36"
SDIST = f"llama-cpp-python=={VERSION}"
_PREFIX = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
_NEEDED = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")

WRAPPER = """
import runpy, sys
vendor = sys.argv[1]
sys.path.insert(0, vendor)
sys.path.insert(1, vendor + "/gguf-py")
import conversion.base as base

def no_sentencepiece_model(self):
    raise FileNotFoundError("no tokenizer.model")

base.TextModel._create_vocab_sentencepiece = no_sentencepiece_model
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "llama-bpe"
script = vendor + "/convert_hf_to_gguf.py"
sys.argv = [script] + sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def _complete(folder: Path) -> bool:
    return all((folder / n.rstrip("/")).exists() for n in _NEEDED)


def download_sdist(into: Path) -> Path:
    """The llama-cpp-python sdist (llama.cpp's source under vendor/), downloaded by pip into `into`."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary=:all:", SDIST, "-d", str(into)],
        check=True,
        timeout=600,
    )
    return next(into.glob("*.tar.gz"))


def unpack_sdist(target_root: Path, wanted: Callable[[str], bool] = lambda name: True) -> Path:
    """Download the sdist and unpack its members whose name `wanted` accepts into
    `target_root`/llama_cpp_python-<version> (staged, then moved into place over any earlier copy)."""
    target_root.mkdir(parents=True, exist_ok=True)
    final = target_root / f"llama_cpp_python-{VERSION}"
    with tempfile.TemporaryDirectory() as tmp:
        sdist = download_sdist(Path(tmp))
        staging = Path(tempfile.mkdtemp(dir=target_root))
        with tarfile.open(sdist) as tf:
            members = [m for m in tf.getmembers() if (m.isfile() or m.isdir()) and wanted(m.name)]
            if sys.version_info >= (3, 12):
                tf.extractall(staging, members=members, filter="data")
            else:
                tf.extractall(staging, members=members)
        if final.exists():
            shutil.rmtree(final)  # an incomplete copy
        os.replace(staging / final.name, final)
        staging.rmdir()
    return final


def converter_dir() -> Path:
    """The folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/; fetched when absent."""
    for folder in (
        cache_dir() / _PREFIX,
        Path.home() / ".cache" / "ozfig-llama.cpp" / _PREFIX,
    ):
        if _complete(folder):
            return folder
    target_root = cache_dir()
    unpack_sdist(
        target_root,
        lambda name: name.startswith(_PREFIX) and name[len(_PREFIX) :].startswith(_NEEDED),
    )
    folder = target_root / _PREFIX
    if not _complete(folder):
        raise RuntimeError(f"{SDIST} sdist did not hold {', '.join(_NEEDED)} under vendor/llama.cpp")
    return folder


def converter_command(model_dir: Path, out: Path, outtype: str = "f16") -> list[str]:
    return [
        sys.executable,
        "-c",
        WRAPPER,
        str(converter_dir()),
        str(model_dir),
        "--outfile",
        str(out),
        "--outtype",
        outtype,
    ]


if __name__ == "__main__":
    print(converter_dir())
