"""Reading evaluation inputs: a plain text for perplexity/KLD, FineTome-style JSONL for answers."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataFormatError, EmptyTextError, InputFileError

log = logging.getLogger(__name__)

# FineTome / ShareGPT speaker names and the chat-template roles they stand for
ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


def _read_bytes(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"the {what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InputFileError(f"the {what} {str(path)!r} is a folder, not a file") from None
    except OSError as exc:
        raise InputFileError(f"cannot read the {what} {str(path)!r}: {exc.strerror}") from None


def read_text(path: str | Path) -> str:
    """The text as llama.cpp's `-f` reads it: the whole file, less one trailing newline."""
    data = _read_bytes(path, "text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"the text file {str(path)!r} is not UTF-8 (byte {exc.start} is invalid); convert it first"
        ) from None
    if text.endswith("\n"):
        text = text[:-1]
    if not text.strip():
        raise EmptyTextError(f"the text file {str(path)!r} is empty: there is nothing to evaluate")
    return text


@dataclass(frozen=True)
class Example:
    """One row to answer: the conversation before the last reply, and that reply as reference."""

    line: int
    messages: list[dict[str, str]]
    reference: str


def _bad(path: str | Path, line: int, why: str) -> DataFormatError:
    return DataFormatError(f"{path}:{line}: {why}")


def parse_row(row: Any, path: str | Path, line: int) -> Example:
    """A FineTome row: the last `gpt` turn is the reference, the turns before it are the prompt."""
    if not isinstance(row, dict):
        raise _bad(path, line, f"expected a JSON object, got {type(row).__name__}")
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise _bad(path, line, 'expected a non-empty "conversations" list')
    messages: list[dict[str, str]] = []
    for k, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise _bad(path, line, f'turn {k} needs "from" and a string "value"')
        speaker = turn.get("from")
        role = ROLES.get(speaker) if isinstance(speaker, str) else None
        if role is None:
            raise _bad(path, line, f'turn {k} has "from": {speaker!r}; expected "human", "gpt" or "system"')
        messages.append({"role": role, "content": turn["value"]})
    last_reply = max((k for k, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    if last_reply < 0:
        raise _bad(path, line, 'no "gpt" turn to use as the reference answer')
    prompt = messages[:last_reply]
    if not any(m["role"] == "user" for m in prompt):
        raise _bad(path, line, 'no "human" turn before the last "gpt" turn')
    return Example(line=line, messages=prompt, reference=messages[last_reply]["content"])


def load_examples(path: str | Path, limit: int | None = None) -> list[Example]:
    """The rows of a JSONL file (blank lines skipped); DataFormatError names the first bad line."""
    data = _read_bytes(path, "data file")
    examples: list[Example] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if limit is not None and len(examples) >= limit:
            break
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except UnicodeDecodeError:
            raise _bad(path, number, "not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise _bad(path, number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        examples.append(parse_row(row, path, number))
    if not examples:
        raise DataFormatError(f"{path}: no rows to evaluate")
    log.info("loaded %d rows from %s", len(examples), path)
    return examples
