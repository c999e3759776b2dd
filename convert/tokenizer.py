"""The vocabulary a llama GGUF carries, read from Hugging Face tokenizer files without `transformers`.

Llama 3 uses a byte-level BPE tokenizer (`tokenizer.json`), which llama.cpp knows as model
`gpt2` with pre-tokenizer `llama-bpe`. The GGUF holds every token's text (byte-level
spelling for ordinary tokens, the plain text for added ones), its type (normal, control,
user-defined, unused padding), the merges, the special token ids, whether BOS is added,
and the chat template. A fine-tune's own tokenizer files (in the adapter folder) win over
the base's: that is where its ChatML template and its end-of-turn token live.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from .errors import InputError, UnsupportedError
from .read import read_json

log = logging.getLogger(__name__)

# The split regex of Llama 3's tokenizer.json; llama.cpp implements it as pre-tokenizer "llama-bpe".
LLAMA3_SPLIT_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
SPECIAL_TYPES = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")


@dataclass
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str
    special_ids: dict[str, int] = field(default_factory=dict)
    add_bos: bool | None = None
    add_eos: bool | None = None
    add_sep: bool | None = None
    chat_template: str | None = None
    add_space_prefix: bool | None = None
    source: Path | None = None


def has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file()


def has_chat_files(folder: Path) -> bool:
    """The folder carries its own tokenizer settings or chat template (without, maybe, tokenizer.json)."""
    names = ("tokenizer_config.json", "chat_template.jinja", "chat_template.json")
    return any((folder / n).is_file() for n in names)


def _looks_special(text: str) -> bool:
    return text.startswith("<|") and text.endswith("|>")


def _check_pre_tokenizer(tok: dict[str, Any], where: Path) -> str:
    model = tok.get("model") or {}
    if model.get("type") != "BPE":
        raise UnsupportedError(
            f"{where} is a {model.get('type', 'unknown')} tokenizer; ozfig convert writes Llama 3's byte-level "
            "BPE tokenizer (Llama 2's SentencePiece tokenizer is not supported yet)."
        )
    pre = tok.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    regexes = [p.get("pattern", {}).get("Regex") for p in parts if p.get("type") == "Split"]
    byte_level = any(p.get("type") == "ByteLevel" for p in parts)
    if byte_level and regexes == [LLAMA3_SPLIT_REGEX]:
        return "llama-bpe"
    raise UnsupportedError(
        f"{where} does not use Llama 3's pre-tokenizer (byte-level BPE with Llama 3's split pattern), so "
        "llama.cpp would split text differently from the model's training. ozfig convert writes Llama 3 "
        "tokenizers only."
    )


def _merges(model: dict[str, Any], where: Path) -> list[str]:
    merges = model.get("merges") or []
    if not merges:
        raise InputError(f"{where} has no BPE merges.")
    if isinstance(merges[0], str):
        return [str(m) for m in merges]
    # transformers >= 4.45 writes pairs; a space inside a part is spelled U+0120+... like llama.cpp expects
    out = []
    for pair in merges:
        if len(pair) != 2:
            raise InputError(f"{where}: a BPE merge is not a pair: {pair!r}")
        out.append(" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part) for part in pair))
    return out


def _post_processor_flags(
    tok: dict[str, Any], bos_text: str | None, sep_texts: set[str]
) -> tuple[bool | None, bool | None, bool | None]:
    """(add_bos, add_eos, add_sep) as the tokenizer's post-processor says, read like llama.cpp's converter."""
    post = tok.get("post_processor") or {}
    add_bos: bool | None = None
    add_eos: bool | None = None
    add_sep: bool | None = None
    for proc in post.get("processors", [post]) if post else []:
        kind = proc.get("type")
        if kind == "ByteLevel":
            add_bos = False if add_bos is None else add_bos
            add_eos = False if add_eos is None else add_eos
        elif kind == "TemplateProcessing":
            single = proc.get("single") or []
            first = last = None
            if len(single) > 1:
                first = single[0].get("SpecialToken", {}).get("id")
                if first:
                    add_bos = first == bos_text or bos_text is None
                last = single[-1].get("SpecialToken", {}).get("id")
                if last:
                    add_eos = True
            pair = proc.get("pair") or []
            if pair:
                start = 1 if first and pair[0].get("SpecialToken", {}).get("id") == first else 0
                stop = -1 if last and pair[-1].get("SpecialToken", {}).get("id") == last else None
                middle = pair[start:stop][1:-1]  # between $A and $B
                add_sep = (
                    any(p.get("SpecialToken", {}).get("id") in sep_texts for p in middle) if middle else None
                )
    return add_bos, add_eos, add_sep


def _token_text(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("content"), str):
        return str(entry["content"])
    return None


def _chat_template(folder: Path, tok_config: dict[str, Any]) -> str | None:
    template = tok_config.get("chat_template")
    if template is None and (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if template is None and (folder / "chat_template.json").is_file():
        template = read_json(folder / "chat_template.json").get("chat_template")
    if isinstance(template, list):  # named templates: llama.cpp uses the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template if isinstance(template, str) and template else None


def load_vocab(
    folder: Path, vocab_size: int, model_config: dict[str, Any], settings_folder: Path | None = None
) -> Vocab:
    """Read `folder`'s tokenizer files into the vocabulary a GGUF of `vocab_size` rows holds.

    `settings_folder`, when given, supplies tokenizer_config.json and the chat template instead
    of `folder` (an adapter that saved its chat settings but not tokenizer.json).
    """
    settings_folder = settings_folder or folder
    path = folder / "tokenizer.json"
    try:
        tok: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{folder} has no tokenizer.json; the GGUF needs the model's tokenizer. Pass --tokenizer with a "
            "folder or Hub id that has it."
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}).") from None
    tok_config = read_json(settings_folder / "tokenizer_config.json", required=False)
    pre = _check_pre_tokenizer(tok, path)
    model = tok["model"]
    merges = _merges(model, path)

    by_id: dict[int, str] = {int(i): str(t) for t, i in (model.get("vocab") or {}).items()}
    added: dict[int, dict[str, Any]] = {int(a["id"]): a for a in tok.get("added_tokens") or []}
    for i, a in added.items():
        by_id[i] = str(a["content"])
    highest = max(by_id) if by_id else -1
    if highest >= vocab_size:
        raise InputError(
            f"{path} has token id {highest}, but the model's embeddings have {vocab_size} rows: the tokenizer "
            "does not belong to this model (or the adapter resized the vocabulary without saving the embeddings)."
        )
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(text)
            special = bool(added[i].get("special")) or _looks_special(text)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(text)
            types.append(gguf.TokenType.NORMAL)

    content_to_id = {str(a["content"]): i for i, a in added.items()}
    special_ids: dict[str, int] = {}
    for kind in SPECIAL_TYPES:
        text = _token_text(tok_config.get(f"{kind}_token"))
        if text is not None and text in content_to_id:
            special_ids[kind] = content_to_id[text]
    for kind in SPECIAL_TYPES:  # the model's config.json, for ids the tokenizer files do not name
        value = model_config.get(f"{kind}_token_id")
        if kind not in special_ids and isinstance(value, int) and 0 <= value < vocab_size:
            special_ids[kind] = value

    bos_text = _token_text(tok_config.get("bos_token"))
    sep_texts = {t for k in ("sep", "eos") if (t := _token_text(tok_config.get(f"{k}_token")))}
    add_bos, add_eos, add_sep = _post_processor_flags(tok, bos_text, sep_texts)
    for kind, current in (("bos", add_bos), ("eos", add_eos)):
        configured = tok_config.get(f"add_{kind}_token")
        if current is None and isinstance(configured, bool):
            if kind == "bos":
                add_bos = configured
            else:
                add_eos = configured
    return Vocab(
        tokens=tokens,
        types=types,
        merges=merges,
        pre=pre,
        special_ids=special_ids,
        add_bos=add_bos,
        add_eos=add_eos,
        add_sep=add_sep,
        chat_template=_chat_template(settings_folder, tok_config),
        add_space_prefix=prefix if isinstance(prefix := tok_config.get("add_prefix_space"), bool) else None,
        source=folder,
    )
