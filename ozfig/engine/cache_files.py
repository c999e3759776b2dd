"""The prompt cache on disk (`--prompt-cache-dir`): written on drain, read back at start.

One file per entry, `<hash of its tokens>.ozkv`: a magic line, a JSON header (the cache key, the
token count, the exact count, the state's length and a SHA-256 of tokens and state), the tokens
(int32, little-endian) and llama.cpp's sequence state. The key names the model file and the
settings that change the KV cells; a file with another key (another model) or a damaged one
(truncated, altered) is skipped with a warning, never loaded. Files are written to a temporary
name and renamed, so a crash never leaves half a file under the real name.
"""

from __future__ import annotations

import array
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from .ram_cache import CacheEntry

log = logging.getLogger(__name__)

MAGIC = b"OZFIG-KV-CACHE 1\n"
SUFFIX = ".ozkv"


def cache_key(model_path: str, lora_path: str = "", layout: str = "") -> str:
    """Names the model file (path, size, modification time) and adapter whose KV a cache holds, and
    the KV's layout where it is not llama.cpp's choice (flash attention keeps V untransposed)."""
    parts: list[object] = []
    for path in (model_path, lora_path):
        if path:
            st = os.stat(path)
            parts.append([os.path.realpath(path), st.st_size, st.st_mtime_ns])
    if layout:
        parts.append(layout)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def _digest(tokens: bytes, state: bytes | bytearray) -> str:
    h = hashlib.sha256(tokens)
    h.update(state)
    return h.hexdigest()


def _token_bytes(tokens: array.array[int]) -> bytes:
    t = array.array("i", tokens)
    if sys.byteorder != "little":
        t.byteswap()
    return t.tobytes()


def write_entries(directory: Path, key: str, entries: Iterable[CacheEntry]) -> int:
    """Write every entry (replacing this key's earlier files); the number written."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(f"*{SUFFIX}"):
        if _header(old, quiet=True).get("key") == key:
            old.unlink(missing_ok=True)
    written = 0
    for entry in entries:
        tokens = _token_bytes(entry.tokens)
        header = {
            "key": key,
            "n_tokens": len(entry.tokens),
            "exact": entry.exact,
            "state_bytes": len(entry.state),
            "sha256": _digest(tokens, entry.state),
        }
        head = json.dumps(header).encode()
        name = directory / f"{hashlib.sha256(key.encode() + tokens).hexdigest()[:24]}{SUFFIX}"
        tmp = name.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(MAGIC + len(head).to_bytes(4, "little") + head + tokens)
            fh.write(entry.state)
        os.replace(tmp, name)
        written += 1
    return written


def _header(path: Path, quiet: bool = False) -> dict[str, object]:
    try:
        with open(path, "rb") as fh:
            if fh.read(len(MAGIC)) != MAGIC:
                raise ValueError("not an ozfig cache file")
            size = int.from_bytes(fh.read(4), "little")
            if not 2 <= size <= 4096:
                raise ValueError("bad header length")
            header = json.loads(fh.read(size))
            if not isinstance(header, dict):
                raise ValueError("bad header")
            return header
    except (OSError, ValueError) as exc:
        if not quiet:
            log.warning("prompt cache file %s is damaged (%s); skipped", path, exc)
        return {}


def read_entries(directory: Path, key: str) -> Iterator[tuple[array.array[int], int, bytearray]]:
    """(tokens, exact, state) of each good file of this key; others skipped with a warning."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        header = _header(path)
        if not header:
            continue
        if header.get("key") != key:
            log.warning("prompt cache file %s was written for another model or settings; skipped", path)
            continue
        try:
            n_tokens, exact, state_bytes = (int(header[k]) for k in ("n_tokens", "exact", "state_bytes"))  # type: ignore[call-overload]
            data = path.read_bytes()
            body = data[len(MAGIC) + 4 + int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "little") :]
            if len(body) != 4 * n_tokens + state_bytes:
                raise ValueError(f"{len(body)} bytes where the header says {4 * n_tokens + state_bytes}")
            tokens_raw, state = body[: 4 * n_tokens], body[4 * n_tokens :]
            if _digest(tokens_raw, state) != header.get("sha256"):
                raise ValueError("checksum mismatch")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("prompt cache file %s is damaged (%s); skipped", path, exc)
            continue
        tokens = array.array("i")
        tokens.frombytes(tokens_raw)
        if sys.byteorder != "little":
            tokens.byteswap()
        yield tokens, exact, bytearray(state)  # loaded into a context without another copy
