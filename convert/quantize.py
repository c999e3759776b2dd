"""Quantize a GGUF with llama.cpp's own quantizer, as llama-cpp-python exposes it.

`ozfig.llama.quantize` (the same mixes as the `llama-quantize` tool: Q4_K_M keeps some
tensors at Q6_K, etc.).
It runs in a worker thread so that Ctrl-C and SIGTERM are still handled by Python while
the C call works; llama.cpp's log lines ("[  12/ 291] blk.1.attn_q.weight ...") drive
the progress bar and its errors go into the message when it fails.
"""

# llama_cpp (through ozfig.llama) must be imported before numpy (see ozfig/cli.py)
from ozfig.llama.quantize import FTYPES, quantize_file  # noqa: I001

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ozfig.llama.backend import capture, detach_log

from .errors import QuantizeError

log = logging.getLogger(__name__)

# name -> (llama_ftype, approximate bits per weight of the result, for the disk-space check)
_BITS = {"Q4_K_M": 4.9, "Q4_K_S": 4.6, "Q5_K_M": 5.7, "Q5_K_S": 5.6, "Q6_K": 6.6, "Q8_0": 8.5}
QUANT_TYPES: dict[str, tuple[int, float]] = {name: (FTYPES[name], bits) for name, bits in _BITS.items()}


def quantize(
    src: Path,
    dst: Path,
    quant: str,
    threads: int = 0,
    on_tensor: Callable[[int, int], None] | None = None,
    max_buf_bytes: int = 256 * 1024 * 1024,
) -> None:
    """Quantize `src` (F32/F16/BF16 GGUF) into `dst` as `quant` (a key of QUANT_TYPES)."""
    result: list[int] = []

    def work() -> None:
        result.append(quantize_file(src, dst, quant, threads=threads, max_buf_bytes=max_buf_bytes))

    with capture(on_tensor) as cap:
        worker = threading.Thread(target=work, name="llama-quantize", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.2)  # wakes up for signals (Ctrl-C, SIGTERM)
        except BaseException:
            # interrupted: the C call goes on until the process exits; stop it calling into Python
            detach_log()
            raise
    if not result or result[0] != 0:
        raise QuantizeError(f"llama.cpp could not quantize to {quant}: {cap.detail()}")
