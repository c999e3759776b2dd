"""llama.cpp's own llama-server, as the reference for greedy text and logprobs.

The binary is llama.cpp built from the llama-cpp-python sdist at
~/.cache/ozfig-llama.cpp/build/bin/llama-server (or $LLAMA_SERVER_BIN; `python -m
tests.support.llama_server_build` builds it, as .ci/run does); tests and benchmarks
that compare with it skip when it is absent or cannot run on this CPU.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, get_json


class LlamaServerCrashed(RuntimeError):
    """llama-server was killed by a signal before it was ready (such as an illegal instruction
    from a binary built with -march=native on another CPU): the reference is unusable here."""


BUILD_DIR = Path.home() / ".cache" / "ozfig-llama.cpp" / "build"


def llama_server_bin() -> Path | None:
    path = Path(os.environ.get("LLAMA_SERVER_BIN", BUILD_DIR / "bin" / "llama-server"))
    return path if path.is_file() and os.access(path, os.X_OK) else None


@contextmanager
def llama_server(model: Path, *args: str, ready_timeout: float = 120.0) -> Iterator[str]:
    """Run llama-server on MODEL (its template through --jinja, one slot, CPU threads 2); yield its base URL."""
    binary = llama_server_bin()
    assert binary is not None, "llama-server is not built"
    port = free_port()
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--jinja"]
    command += ["-np", "1", "-t", "2", "-c", "2048", "--no-warmup", *args]
    from ozfig.llama.backend import cpu_has_amx  # here: building the binary needs no libllama

    if cpu_has_amx():
        # llama.cpp's AMX kernels for repacked quantized weights crash on these CPUs (CI: killed
        # by signal 11 while loading); ozfig's engine loads without them (ozfig/llama/backend.py),
        # so the reference does too
        command.append("--no-repack")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                tail = proc.stderr.read()[-2000:] if proc.stderr else ""
                if proc.returncode < 0:
                    raise LlamaServerCrashed(
                        f"{binary} was killed by signal {-proc.returncode} while starting"
                        f" (built for another CPU? rebuild it here): {tail}"
                    )
                raise AssertionError(f"llama-server exited with {proc.returncode}: {tail}")
            try:
                status, _ = get_json(base + "/health", timeout=2)
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("llama-server did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
