"""The public chat templates in tests/data/chat_templates, and transformers' render as the reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "data" / "chat_templates"


@dataclass(frozen=True)
class KnownTemplate:
    name: str
    system_role: bool  # whether the template takes a system message

    @property
    def path(self) -> Path:
        return TEMPLATE_DIR / f"{self.name}.jinja"

    @property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")


KNOWN_TEMPLATES = [
    KnownTemplate("llama-3.1-instruct", True),
    KnownTemplate("llama-3.2-instruct", True),
    KnownTemplate("unsloth-chatml", True),
    KnownTemplate("mistral-7b-instruct-v0.2", False),
    KnownTemplate("mistral-7b-instruct-v0.3", True),
    KnownTemplate("gemma-2-it", False),
    KnownTemplate("qwen-2.5-instruct", True),
]
BY_NAME = {t.name: t for t in KNOWN_TEMPLATES}


@cache
def _hf_tokenizer(bos: str, eos: str) -> Any:
    """A transformers tokenizer whose only job is apply_chat_template(tokenize=False)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, bos: 1, eos: 2}, unk_token="[UNK]"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, unk_token="[UNK]")


def reference_render(
    source: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    bos: str,
    eos: str,
    add_generation_prompt: bool = True,
) -> str:
    """What transformers' `apply_chat_template` renders for these messages."""
    tok = _hf_tokenizer(bos, eos)
    text: str = tok.apply_chat_template(
        [dict(m) for m in messages],
        chat_template=source,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )
    return text


def conversation(system_role: bool, *, system: str = " Be brief. \n") -> list[dict[str, str]]:
    """A conversation the template takes, with whitespace around the contents."""
    turns = [
        {"role": "user", "content": "  Hello there!\n"},
        {"role": "assistant", "content": "\tHi. How can I help?  "},
        {"role": "user", "content": "What is the capital of Australia?\n\n"},
    ]
    return ([{"role": "system", "content": system}] if system_role else []) + turns
