"""Where each tensor of a GGUF file is, read straight from its header.

`gguf.GGUFReader` builds a numpy view for every element of every metadata array, which for
Llama 3's vocabulary (128,256 tokens and 280,147 merges) takes tens of seconds. Checking a
written file needs only the tensor infos: this reader steps over the metadata (string
lengths only) and returns each tensor's name, shape, type and byte range.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import gguf

_MAGIC = b"GGUF"
_STRING = gguf.GGUFValueType.STRING
_ARRAY = gguf.GGUFValueType.ARRAY
_FIXED = {  # value type -> bytes
    gguf.GGUFValueType.UINT8: 1,
    gguf.GGUFValueType.INT8: 1,
    gguf.GGUFValueType.BOOL: 1,
    gguf.GGUFValueType.UINT16: 2,
    gguf.GGUFValueType.INT16: 2,
    gguf.GGUFValueType.UINT32: 4,
    gguf.GGUFValueType.INT32: 4,
    gguf.GGUFValueType.FLOAT32: 4,
    gguf.GGUFValueType.UINT64: 8,
    gguf.GGUFValueType.INT64: 8,
    gguf.GGUFValueType.FLOAT64: 8,
}
_ALIGNMENT_KEY = gguf.Keys.General.ALIGNMENT


@dataclass(frozen=True)
class TensorEntry:
    name: str
    shape: tuple[int, ...]  # numpy order (rows first)
    qtype: gguf.GGMLQuantizationType
    offset: int  # absolute byte offset of the data in the file
    nbytes: int


class _Cursor:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def string(self) -> bytes:
        n = self.take("<Q")
        if self.pos + n > len(self.buf):
            raise ValueError("a string runs past the end of the file")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw

    def skip_string(self) -> None:
        n = self.take("<Q")
        self.pos += n

    def skip_value(self, kind: int) -> None:
        if kind == _STRING:
            self.skip_string()
        elif kind == _ARRAY:
            item, count = self.take("<I"), self.take("<Q")
            if item == _STRING:
                for _ in range(count):
                    self.pos += 8 + struct.unpack_from("<Q", self.buf, self.pos)[0]
            elif item in _FIXED:
                self.pos += count * _FIXED[gguf.GGUFValueType(item)]
            else:
                for _ in range(count):
                    self.skip_value(item)
        elif kind in _FIXED:
            self.pos += _FIXED[gguf.GGUFValueType(kind)]
        else:
            raise ValueError(f"unknown metadata value type {kind}")
        if self.pos > len(self.buf):
            raise ValueError("the metadata runs past the end of the file")


def read_tensor_index(path: Path) -> list[TensorEntry]:
    """Every tensor's name, shape, type and byte range; ValueError when the file is not GGUF v2/v3."""
    try:
        return _read(path)
    except (struct.error, KeyError, UnicodeDecodeError) as exc:  # counts or types from a damaged header
        raise ValueError(f"damaged GGUF header ({exc})") from None


def _read(path: Path) -> list[TensorEntry]:
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf)
        if buf[:4] != _MAGIC:
            raise ValueError("not a GGUF file")
        cur.pos = 4
        version = cur.take("<I")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} is not supported")
        n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
        alignment = gguf.GGUF_DEFAULT_ALIGNMENT
        for _ in range(n_kv):
            key = cur.string()
            kind = cur.take("<I")
            if key == _ALIGNMENT_KEY.encode() and kind == gguf.GGUFValueType.UINT32:
                alignment = cur.take("<I")
            else:
                cur.skip_value(kind)
        infos = []
        for _ in range(n_tensors):
            name = cur.string().decode("utf-8")
            dims = [cur.take("<Q") for _ in range(cur.take("<I"))]
            qtype = gguf.GGMLQuantizationType(cur.take("<I"))
            offset = cur.take("<Q")
            infos.append((name, tuple(reversed(dims)), qtype, offset))
        start = -(-cur.pos // alignment) * alignment
    entries = []
    for name, shape, qtype, offset in infos:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        numel = 1
        for d in shape:
            numel *= d
        entries.append(TensorEntry(name, shape, qtype, start + offset, numel // block * size))
    return entries
