"""Quantize a GGUF with llama.cpp's own quantizer, as llama-cpp-python exposes it.

`llama_model_quantize` with the parameters from `llama_model_quantize_default_params()`
(the same mixes as the `llama-quantize` tool: Q4_K_M keeps some tensors at Q6_K, etc.).
It runs in a worker thread so that Ctrl-C and SIGTERM are still handled by Python while
the C call works; llama.cpp's log lines ("[  12/ 291] blk.1.attn_q.weight ...") drive
the progress bar and its errors go into the message when it fails.
"""

# llama_cpp must be imported before numpy (see ozfig/cli.py)
import llama_cpp as lc  # noqa: I001

import ctypes
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ozfig.llama.backend import capture, detach_log

from .errors import QuantizeError

log = logging.getLogger(__name__)

# name -> (llama_ftype, approximate bits per weight of the result, for the disk-space check)
QUANT_TYPES: dict[str, tuple[int, float]] = {
    "Q4_K_M": (lc.LLAMA_FTYPE_MOSTLY_Q4_K_M, 4.9),
    "Q4_K_S": (lc.LLAMA_FTYPE_MOSTLY_Q4_K_S, 4.6),
    "Q5_K_M": (lc.LLAMA_FTYPE_MOSTLY_Q5_K_M, 5.7),
    "Q5_K_S": (lc.LLAMA_FTYPE_MOSTLY_Q5_K_S, 5.6),
    "Q6_K": (lc.LLAMA_FTYPE_MOSTLY_Q6_K, 6.6),
    "Q8_0": (lc.LLAMA_FTYPE_MOSTLY_Q8_0, 8.5),
}


def quantize(
    src: Path,
    dst: Path,
    quant: str,
    threads: int = 0,
    on_tensor: Callable[[int, int], None] | None = None,
    max_buf_bytes: int = 256 * 1024 * 1024,
) -> None:
    """Quantize `src` (F32/F16/BF16 GGUF) into `dst` as `quant` (a key of QUANT_TYPES)."""
    ftype, _ = QUANT_TYPES[quant]
    params = lc.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    if hasattr(params, "max_buf_size"):
        params.max_buf_size = max_buf_bytes  # bound llama.cpp's row buffers (its default is 8 GiB)
    result: list[int] = []

    def work() -> None:
        result.append(
            int(lc.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)))
        )

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
