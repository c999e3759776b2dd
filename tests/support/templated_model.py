"""Copies of a GGUF that carry another chat template, made with gguf's own `gguf-new-metadata`.

Each copy is kept in the test cache (never in git) under a name that holds the digest of
the source file's name and size and of the template, so it is made once and remade when
either changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.support.model_file import cache_dir


def with_chat_template(model: Path, template: Path) -> Path:
    """A copy of `model` whose `tokenizer.chat_template` is the text of `template`."""
    h = hashlib.sha256()
    h.update(f"{model.name}:{model.stat().st_size}:".encode())
    h.update(template.read_bytes())
    target = cache_dir() / "templated" / f"{model.stem}.{template.stem}.{h.hexdigest()[:12]}.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gguf.scripts.gguf_new_metadata",
            "--force",
            "--chat-template-file",
            str(template),
            str(model),
            str(partial),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"gguf-new-metadata failed: {proc.stderr[-2000:]}")
    os.replace(partial, target)
    return target
