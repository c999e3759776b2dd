"""A GGUF file's metadata and tensor index, read straight from its header.

`gguf.GGUFReader` builds a numpy view for every element of every metadata array, which for
Llama 3's vocabulary (128,256 tokens and 280,147 merges) takes tens of seconds. Checking a
written file needs only the tensor infos, and `ozfig inspect` only the sizes of the big
arrays: `read_tensor_index` steps over the metadata (string lengths only) and returns each
tensor's name, shape, type and byte range; `read_gguf` also decodes the metadata, with the
arrays it is told to count given as their lengths and the special tokens' texts looked up.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

_MAGIC = b"GGUF"
_STRING = gguf.GGUFValueType.STRING
_ARRAY = gguf.GGUFValueType.ARRAY
_NUMBER_FORMATS = {  # value type -> struct format
    gguf.GGUFValueType.UINT8: "<B",
    gguf.GGUFValueType.INT8: "<b",
    gguf.GGUFValueType.BOOL: "<?",
    gguf.GGUFValueType.UINT16: "<H",
    gguf.GGUFValueType.INT16: "<h",
    gguf.GGUFValueType.UINT32: "<I",
    gguf.GGUFValueType.INT32: "<i",
    gguf.GGUFValueType.FLOAT32: "<f",
    gguf.GGUFValueType.UINT64: "<Q",
    gguf.GGUFValueType.INT64: "<q",
    gguf.GGUFValueType.FLOAT64: "<d",
}
_FIXED = {kind: struct.calcsize(fmt) for kind, fmt in _NUMBER_FORMATS.items()}  # value type -> bytes
_ALIGNMENT_KEY = gguf.Keys.General.ALIGNMENT
_TOKENS_KEY = gguf.Keys.Tokenizer.LIST


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

    def value(self, kind: int) -> Any:
        """A scalar, a string or an array, decoded (floats as Python floats, strings as str)."""
        if kind == _STRING:
            return self.string().decode("utf-8")
        if kind == _ARRAY:
            item, count = self.take("<I"), self.take("<Q")
            if item in _NUMBER_FORMATS and count <= len(self.buf):
                fmt = _NUMBER_FORMATS[gguf.GGUFValueType(item)]
                size = struct.calcsize(fmt)
                values = [v for (v,) in struct.iter_unpack(fmt, self.buf[self.pos : self.pos + count * size])]
                if len(values) != count:
                    raise ValueError("an array runs past the end of the file")
                self.pos += count * size
                return values
            return [self.value(item) for _ in range(count)]
        if kind in _NUMBER_FORMATS:
            (number,) = struct.unpack_from(_NUMBER_FORMATS[gguf.GGUFValueType(kind)], self.buf, self.pos)
            self.pos += _FIXED[gguf.GGUFValueType(kind)]
            return number
        raise ValueError(f"unknown metadata value type {kind}")

    def string_positions(self) -> list[int]:
        """Step over an array of strings (its type already read); where each string starts."""
        item, count = self.take("<I"), self.take("<Q")
        if item != _STRING:
            raise ValueError("the token list is not an array of strings")
        starts = []
        for _ in range(count):
            starts.append(self.pos)
            self.pos += 8 + struct.unpack_from("<Q", self.buf, self.pos)[0]
        return starts

    def array_length(self) -> int:
        """Step over an array (its type already read); its element count."""
        (count,) = struct.unpack_from("<Q", self.buf, self.pos + 4)
        self.skip_value(_ARRAY)
        return int(count)

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


@dataclass
class GGUFContents:
    fields: dict[str, Any]  # metadata; the counted arrays as their lengths
    tensors: list[TensorEntry]
    token_text: dict[int, str] = field(default_factory=dict)  # the special token ids' texts


def read_gguf(path: Path, counted: Collection[str] = ()) -> GGUFContents:
    """Metadata and tensor index; ValueError when the file is not a readable GGUF v2/v3."""
    try:
        return _read_all(path, counted)
    except (struct.error, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"damaged GGUF header ({exc})") from None


def read_tensor_index(path: Path) -> list[TensorEntry]:
    """Every tensor's name, shape, type and byte range; ValueError when the file is not GGUF v2/v3."""
    try:
        return _read(path)
    except (struct.error, KeyError, UnicodeDecodeError) as exc:  # counts or types from a damaged header
        raise ValueError(f"damaged GGUF header ({exc})") from None


def _read(path: Path) -> list[TensorEntry]:
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur, n_tensors, n_kv = _start(buf)
        alignment = gguf.GGUF_DEFAULT_ALIGNMENT
        for _ in range(n_kv):
            key = cur.string()
            kind = cur.take("<I")
            if key == _ALIGNMENT_KEY.encode() and kind == gguf.GGUFValueType.UINT32:
                alignment = cur.take("<I")
            else:
                cur.skip_value(kind)
        return _tensor_infos(cur, n_tensors, alignment)


def _read_all(path: Path, counted: Collection[str]) -> GGUFContents:
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur, n_tensors, n_kv = _start(buf)
        fields: dict[str, Any] = {}
        token_starts: list[int] = []
        for _ in range(n_kv):
            key = cur.string().decode("utf-8")
            kind = cur.take("<I")
            if key == _TOKENS_KEY and kind == _ARRAY:
                token_starts = cur.string_positions()
                value: Any = len(token_starts)
                if key not in counted:
                    value = [_string_at(buf, p) for p in token_starts]
            elif key in counted and kind == _ARRAY:
                value = cur.array_length()
            else:
                value = cur.value(kind)
            fields[key] = value
        alignment = fields.get(_ALIGNMENT_KEY, gguf.GGUF_DEFAULT_ALIGNMENT)
        tensors = _tensor_infos(cur, n_tensors, int(alignment))
        token_text: dict[int, str] = {}
        for key, value in fields.items():
            special = key.startswith("tokenizer.ggml.") and key.endswith("_token_id")
            if special and isinstance(value, int) and 0 <= value < len(token_starts):
                token_text[value] = _string_at(buf, token_starts[value])
    return GGUFContents(fields, tensors, token_text)


def _string_at(buf: mmap.mmap, pos: int) -> str:
    (n,) = struct.unpack_from("<Q", buf, pos)
    return bytes(buf[pos + 8 : pos + 8 + n]).decode("utf-8")


def _start(buf: mmap.mmap) -> tuple[_Cursor, int, int]:
    cur = _Cursor(buf)
    if buf[:4] != _MAGIC:
        raise ValueError("not a GGUF file")
    cur.pos = 4
    version = cur.take("<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported")
    return cur, cur.take("<Q"), cur.take("<Q")


def _tensor_infos(cur: _Cursor, n_tensors: int, alignment: int) -> list[TensorEntry]:
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
