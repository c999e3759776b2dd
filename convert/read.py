"""Read Hugging Face checkpoints lazily, without torch.

`TensorStore` joins the files of one checkpoint (single file, or shards and their index),
each read through `safetensors_file.SafetensorsFile`: tensors are handed out as float32 a
block of rows at a time, and their pages dropped from the process once used.
`checkpoint_files` finds a folder's weight files, `read_json` its JSON files, and
`BaseCheckpoint` is a model folder opened: config, generation config, tensors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InputError, UnsupportedError
from .safetensors_file import F32Array, SafetensorsFile, TensorInfo, bf16_to_f32


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
