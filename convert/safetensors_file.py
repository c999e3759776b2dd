"""One safetensors file, read lazily, without torch.

A safetensors file is an 8-byte header length, a JSON header naming each tensor's dtype,
shape and byte range, then the raw little-endian data. `SafetensorsFile` checks the header,
memory-maps the file and hands out numpy views; bf16 (not a numpy dtype) is kept as uint16
and widened to float32 on demand (`bf16_to_f32`). `release` drops a tensor's pages from the
process (madvise DONTNEED), so reading a 16 GB checkpoint does not leave 16 GB resident.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InputError, UnsupportedError

F32Array = npt.NDArray[np.float32]

# safetensors dtype -> (numpy dtype of the stored bytes, bytes per element)
_STORED: dict[str, tuple[type[np.generic], int]] = {
    "BF16": (np.uint16, 2),
    "F16": (np.float16, 2),
    "F32": (np.float32, 4),
}
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors spelling: BF16, F16, F32, ...
    shape: tuple[int, ...]
    file: Path
    offset: int  # absolute byte offset of the data in `file`
    nbytes: int

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def bf16_to_f32(raw: npt.NDArray[np.uint16]) -> F32Array:
    """Widen bf16 bits (stored as uint16) to float32: the bf16 bits are the float32's top half."""
    wide = raw.astype(np.uint32)
    np.left_shift(wide, 16, out=wide)
    return wide.view(np.float32)


def _is_count(value: Any) -> bool:
    """A non-negative JSON integer (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor_info(path: Path, name: str, entry: Any, data_start: int) -> TensorInfo:
    """One header entry, checked: a dtype string, a shape of non-negative integers, a forward byte range."""
    damaged = f"{path} has a damaged safetensors header: tensor {name!r}"
    if not isinstance(entry, dict):
        raise InputError(f"{damaged} is not described by a JSON object. Download it again.")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str):
        raise InputError(f"{damaged} has no dtype. Download it again.")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise InputError(f"{damaged} has no valid shape (a list of non-negative integers): {shape!r}.")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[1] < offsets[0]
    ):
        raise InputError(f"{damaged} has no valid data_offsets (two increasing byte offsets): {offsets!r}.")
    begin, end = offsets
    return TensorInfo(
        name=name,
        dtype=dtype,
        shape=tuple(shape),
        file=path,
        offset=data_start + begin,
        nbytes=end - begin,
    )


class SafetensorsFile:
    """One .safetensors file: its header at once, its data through a memory map."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    raise InputError(f"{path} is not a safetensors file (it is shorter than 8 bytes).")
                (n,) = struct.unpack("<Q", head)
                if n > _MAX_HEADER or 8 + n > size:
                    raise InputError(
                        f"{path} is not a safetensors file or is truncated (header length {n}). "
                        "Download it again."
                    )
                header: Any = json.loads(fh.read(n))
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise InputError(f"{path} has a damaged safetensors header. Download it again.") from None
        if not isinstance(header, dict):
            raise InputError(
                f"{path} has a damaged safetensors header (not a JSON object). Download it again."
            )
        metadata = header.pop("__metadata__", None) or {}
        self.metadata: dict[str, str] = metadata if isinstance(metadata, dict) else {}
        data_start = 8 + n
        self.tensors: dict[str, TensorInfo] = {}
        for name, entry in header.items():
            info = _tensor_info(path, name, entry, data_start)
            if info.offset + info.nbytes > size:
                raise InputError(
                    f"{path} is truncated: tensor {name!r} ends past the end of the file. Download it again."
                )
            stored = _STORED.get(info.dtype)
            if stored is not None and info.numel * stored[1] != info.nbytes:
                raise InputError(f"{path}: tensor {name!r} has {info.nbytes} bytes for shape {info.shape}.")
            self.tensors[name] = info
        self._mm: mmap.mmap | None = None
        self._fd: int | None = None

    def _map(self) -> mmap.mmap:
        if self._mm is None:
            self._fd = os.open(self.path, os.O_RDONLY)
            self._mm = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        return self._mm

    def raw(self, info: TensorInfo) -> npt.NDArray[Any]:
        """The stored elements of a tensor, as a read-only view on the memory map."""
        stored = _STORED.get(info.dtype)
        if stored is None:
            raise UnsupportedError(
                f"tensor {info.name!r} in {self.path.name} is stored as {info.dtype}; ozfig converts 16- and "
                "32-bit float checkpoints (BF16, F16, F32). A quantized (4-bit/8-bit) checkpoint cannot be the "
                "base: use the original 16-bit model."
            )
        arr = np.frombuffer(self._map(), dtype=stored[0], count=info.numel, offset=info.offset)
        return arr.reshape(info.shape) if info.shape else arr.reshape(())

    def release(self, info: TensorInfo) -> None:
        """Drop a tensor's pages from this process (they stay in the page cache)."""
        if self._mm is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        start = (info.offset // page) * page
        end = min(len(self._mm), info.offset + info.nbytes)
        if end > start:
            with contextlib.suppress(OSError, ValueError):  # best effort
                self._mm.madvise(mmap.MADV_DONTNEED, start, end - start)

    def close(self) -> None:
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # a view is still alive; the map goes with it
                self._mm.close()
            self._mm = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
