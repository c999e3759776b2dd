"""A GGUF holding only a model's metadata and vocabulary (no weights), its tokens changed: a
"draft model" whose vocabulary is not the model's, for the start-up check, made with gguf-py."""

from __future__ import annotations

from pathlib import Path

import gguf


def vocabulary_only(source: Path, target: Path, renamed: dict[int, str]) -> Path:
    """`source`'s metadata, with token `i`'s text `renamed[i]`, written to `target` without tensors."""
    reader = gguf.GGUFReader(source)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(target, arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == gguf.Keys.Tokenizer.LIST:
            value = [renamed.get(i, text) for i, text in enumerate(value)]
        writer.add_key_value(field.name, value, kind, sub_type=sub)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return target
