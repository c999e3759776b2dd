"""Build llama.cpp's llama-server from the pinned llama-cpp-python sdist, for the tests against it.

`python -m tests.support.llama_server_build` (a step of .ci/run) leaves the binary where
tests/support/llama_server.py looks: ~/.cache/ozfig-llama.cpp/build/bin/llama-server. A binary
already there that runs on this CPU (`--version` exits 0) is kept; one that cannot (built on
another machine for its CPU) is built again. The source is unpacked next to the build, under
~/.cache/ozfig-llama.cpp/llama_cpp_python-<version>/ (where the converter and the benchmarks
also look). Nothing is built where $LLAMA_SERVER_BIN names a binary of the user's own.

Exits 1 with one line on stderr when the tools (cmake, a C++ compiler) or the build fail: the
tests against llama-server then skip, nothing else depends on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.llama_cpp_converter import VERSION, unpack_sdist
from tests.support.llama_server import BUILD_DIR

SOURCE_ROOT = BUILD_DIR.parent
TARGET = "llama-server"


class BuildFailed(RuntimeError):
    """llama-server could not be built here (the message says which step)."""


def runs_here(binary: Path) -> bool:
    """Whether `binary --version` exits 0 on this machine (a foreign -march=native build does not)."""
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return False
    try:
        return subprocess.run([str(binary), "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def source_dir() -> Path:
    """llama.cpp's source from the sdist, unpacked whole once (staged, then moved into place)."""
    root = SOURCE_ROOT / f"llama_cpp_python-{VERSION}"
    source = root / "vendor" / "llama.cpp"
    if (source / "CMakeLists.txt").is_file() and (source / "tools" / "server").is_dir():
        return source
    unpack_sdist(SOURCE_ROOT)
    return source


def build() -> Path:
    """The llama-server binary, built (or rebuilt) unless one that runs here is already there."""
    binary = BUILD_DIR / "bin" / TARGET
    if runs_here(binary):
        return binary
    cmake = shutil.which("cmake")
    if cmake is None or (shutil.which("c++") is None and shutil.which("g++") is None):
        raise BuildFailed("cmake and a C++ compiler are needed to build llama-server")
    if BUILD_DIR.exists():
        shutil.rmtree(BUILD_DIR)  # a build for another CPU, or a broken one: start clean
    configure = [cmake, "-S", str(source_dir()), "-B", str(BUILD_DIR), "-DCMAKE_BUILD_TYPE=Release"]
    configure += ["-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    jobs = str(os.cpu_count() or 2)
    for step, command in (
        ("configure", configure),
        ("build", [cmake, "--build", str(BUILD_DIR), "--target", TARGET, "-j", jobs]),
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise BuildFailed(f"cmake {step} failed: {(done.stdout + done.stderr)[-1500:]}")
    if not runs_here(binary):
        raise BuildFailed(f"{binary} was built but does not run")
    return binary


def main() -> int:
    if os.environ.get("LLAMA_SERVER_BIN"):
        print(f"LLAMA_SERVER_BIN is set ({os.environ['LLAMA_SERVER_BIN']}): nothing to build")
        return 0
    try:
        print(build())
    except (BuildFailed, subprocess.SubprocessError, OSError) as exc:
        print(f"llama-server was not built: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
