"""Read Hugging Face checkpoints lazily, without torch.

A safetensors file is an 8-byte header length, a JSON header naming each tensor's dtype,
shape and byte range, then the raw little-endian data. `SafetensorsFile` memory-maps the
file and hands out numpy views; bf16 (not a numpy dtype) is kept as uint16 and widened to
float32 on demand, a block of rows at a time. `release` drops a tensor's pages from the
process (madvise DONTNEED), so reading a 16 GB checkpoint does not leave 16 GB resident.
`TensorStore` joins the files of one checkpoint (single file, or shards and their index).
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InputError, UnsupportedError

log = logging.getLogger(__name__)

F32Array = npt.NDArray[np.float32]

# safetensors dtype -> (numpy dtype of the stored bytes, bytes per element)
_STORED: dict[str, tuple[type[np.generic], int]] = {
    "BF16": (np.uint16, 2),
    "F16": (np.float16, 2),
    "F32": (np.float32, 4),
}
FLOAT_DTYPES = frozenset(_STORED)
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


class TensorStore:
    """The tensors of one checkpoint, spread over one or more safetensors files."""

    def __init__(self, files: list[Path]) -> None:
        self.files = [SafetensorsFile(p) for p in files]
        self.infos: dict[str, TensorInfo] = {}
        self._owner: dict[str, SafetensorsFile] = {}
        for f in self.files:
            for name, info in f.tensors.items():
                if name in self.infos:
                    raise InputError(f"tensor {name!r} appears in both {self.infos[name].file} and {f.path}.")
                self.infos[name] = info
                self._owner[name] = f

    def __contains__(self, name: object) -> bool:
        return name in self.infos

    def __iter__(self) -> Iterator[str]:
        return iter(self.infos)

    def info(self, name: str) -> TensorInfo:
        return self.infos[name]

    def raw(self, name: str) -> npt.NDArray[Any]:
        return self._owner[name].raw(self.infos[name])

    def rows_f32(self, name: str, rows: slice | npt.NDArray[np.intp]) -> F32Array:
        """Rows of a tensor (or all of a 1-D one) as a new float32 array."""
        info = self.infos[name]
        raw = self.raw(name)
        part = raw[rows] if raw.ndim >= 1 else raw
        if info.dtype == "BF16":
            return bf16_to_f32(part)
        return np.array(part, dtype=np.float32, copy=True)

    def f32(self, name: str) -> F32Array:
        return self.rows_f32(name, slice(None))

    def release(self, name: str, rows: tuple[int, int] | None = None) -> None:
        """Drop a tensor's pages (or those of rows [start, stop)) from the process."""
        info = self.infos[name]
        if rows is not None and info.shape:
            row_bytes = info.nbytes // info.shape[0]
            start, stop = rows
            info = TensorInfo(
                name,
                info.dtype,
                info.shape,
                info.file,
                info.offset + start * row_bytes,
                (stop - start) * row_bytes,
            )
        self._owner[name].release(info)

    def close(self) -> None:
        for f in self.files:
            f.close()


def checkpoint_files(folder: Path, stem: str = "model") -> list[Path]:
    """The safetensors files of a checkpoint folder: `<stem>.safetensors`, or the shards its index names."""
    index = folder / f"{stem}.safetensors.index.json"
    single = folder / f"{stem}.safetensors"
    if index.is_file():
        try:
            weight_map: Any = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise InputError(f"{index} is not a valid safetensors index ({exc}).") from None
        if not isinstance(weight_map, dict) or not all(
            isinstance(v, str) and v and "/" not in v and v not in (".", "..") for v in weight_map.values()
        ):
            raise InputError(
                f"{index} is not a valid safetensors index (weight_map must map names to file names)."
            )
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise InputError(
                f"{folder} is incomplete: {len(missing)} shard(s) named by {index.name} are missing "
                f"(first: {missing[0]}). Download the checkpoint again."
            )
        return [folder / n for n in names]
    if single.is_file():
        return [single]
    others = sorted(folder.glob("*.safetensors"))
    if others:
        return others
    if any(folder.glob("*.bin")) or any(folder.glob("*.pth")) or any(folder.glob("*.pt")):
        raise UnsupportedError(
            f"{folder} holds PyTorch pickle weights (.bin/.pth) only. ozfig reads safetensors, which cannot "
            "run code when loaded: save the model with `save_pretrained(..., safe_serialization=True)` first."
        )
    raise InputError(f"{folder} holds no .safetensors weights.")


def read_json(path: Path, required: bool = True) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise InputError(f"{path} is missing.")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} does not hold a JSON object.")
    return data


@dataclass
class BaseCheckpoint:
    """A Hugging Face model folder: config, tensors and (optionally) tokenizer files."""

    folder: Path
    config: dict[str, Any]
    generation_config: dict[str, Any]
    tensors: TensorStore

    @classmethod
    def open(cls, folder: Path) -> BaseCheckpoint:
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder. --base takes a Hugging Face model folder or Hub id.")
        config = read_json(folder / "config.json")
        gen = read_json(folder / "generation_config.json", required=False)
        return cls(folder, config, gen, TensorStore(checkpoint_files(folder)))
