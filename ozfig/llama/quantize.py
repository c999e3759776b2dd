"""llama.cpp's own quantizer (`llama_model_quantize`, the mixes of the `llama-quantize` tool)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp as lc

# name -> llama_ftype (Q4_K_M keeps some tensors at Q6_K, etc., as llama-quantize does)
FTYPES: dict[str, int] = {
    "Q4_K_M": lc.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "Q4_K_S": lc.LLAMA_FTYPE_MOSTLY_Q4_K_S,
    "Q5_K_M": lc.LLAMA_FTYPE_MOSTLY_Q5_K_M,
    "Q5_K_S": lc.LLAMA_FTYPE_MOSTLY_Q5_K_S,
    "Q6_K": lc.LLAMA_FTYPE_MOSTLY_Q6_K,
    "Q8_0": lc.LLAMA_FTYPE_MOSTLY_Q8_0,
}


def quantize_file(src: Path, dst: Path, quant: str, *, threads: int, max_buf_bytes: int) -> int:
    """Quantize `src` into `dst` as `quant` (a key of FTYPES); llama.cpp's return code (0: done).

    A blocking C call: run it in a thread to keep signals handled.
    """
    params = lc.llama_model_quantize_default_params()
    params.ftype = FTYPES[quant]
    params.nthread = threads
    if hasattr(params, "max_buf_size"):
        params.max_buf_size = max_buf_bytes  # bound llama.cpp's row buffers (its default is 8 GiB)
    return int(lc.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)))
