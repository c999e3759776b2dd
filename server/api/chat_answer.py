"""An answer's text made into what OpenAI sends: content, tool calls and logprobs.

`AnswerReader` reads the pieces of a generation as they come (`feed`) and says what to send
now, as chat.completion.chunk deltas: content, a tool call's start (index, id, name) and
fragments of its arguments (the model's tool format, `ozfig.tools.parser`). The whole
(non-streamed) answer goes through the same reader, so both always agree. Logprobs are
shaped as OpenAI's `{token, logprob, bytes, top_logprobs}` from the engine's token ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ozfig.engine.logprobs import TokenLogprob
from ozfig.llama.model import LlamaModel
from ozfig.tools.calls import ToolUse
from ozfig.tools.formats import ToolFormat
from ozfig.tools.parser import ArgumentsDelta, CallStarted, ContentDelta, Event, ToolCallParser

FLOOR = -9999.0  # a logprob JSON can carry for -inf


def _finite(value: float) -> float:
    return value if math.isfinite(value) else FLOOR


class TokenText:
    """Token ids as OpenAI shows them: the text and the bytes."""

    def __init__(self, model: LlamaModel, visible: tuple[int, ...] = ()) -> None:
        self.model = model
        self.visible = visible

    def bytes_of(self, token: int) -> bytes:
        if token in self.visible:
            return self.model.token_text(token).encode()
        return self.model.piece(token)

    def entry(self, token: int, logprob: float) -> dict[str, Any]:
        raw = self.bytes_of(token)
        return {"token": raw.decode("utf-8", "replace"), "logprob": _finite(logprob), "bytes": list(raw)}

    def logprob(self, item: TokenLogprob) -> dict[str, Any]:
        out = self.entry(item.token, item.logprob)
        out["top_logprobs"] = [self.entry(t, lp) for t, lp in item.top]
        return out


def delta_of(event: Event) -> dict[str, Any]:
    if isinstance(event, ContentDelta):
        return {"content": event.text}
    if isinstance(event, CallStarted):
        start = {"index": event.index, "id": event.id, "type": "function"}
        return {"tool_calls": [{**start, "function": {"name": event.name, "arguments": ""}}]}
    assert isinstance(event, ArgumentsDelta)
    return {"tool_calls": [{"index": event.index, "function": {"arguments": event.text}}]}


@dataclass
class AnswerReader:
    """One answer's reader: its tool-call parser (with tools offered) and logprob shaping."""

    text_of: TokenText
    tool_use: ToolUse | None = None
    fmt: ToolFormat | None = None
    logprobs: bool = False
    parser: ToolCallParser | None = field(init=False, default=None)
    text: str = field(init=False, default="")
    sent_logprobs: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.tool_use is not None and self.fmt is not None and self.tool_use.callable:
            self.parser = ToolCallParser(self.fmt, [t.name for t in self.tool_use.callable])

    def feed(self, piece: str) -> list[dict[str, Any]]:
        """The deltas to send for a new piece of text."""
        self.text += piece
        if self.parser is None:
            return [{"content": piece}] if piece else []
        return [delta_of(e) for e in self.parser.feed(piece)]

    def finish(self) -> list[dict[str, Any]]:
        """The deltas held back until the end."""
        if self.parser is None:
            return []
        return [delta_of(e) for e in self.parser.finish()]

    @property
    def called(self) -> bool:
        return bool(self.parser is not None and self.parser.calls)

    @property
    def content(self) -> str:
        return self.text if self.parser is None else self.parser.content

    def tool_calls(self) -> list[dict[str, Any]] | None:
        if self.parser is None or not self.parser.calls:
            return None
        return [c.as_openai() for c in self.parser.calls]

    def new_logprobs(self, entries: list[TokenLogprob]) -> list[dict[str, Any]] | None:
        """The logprobs of the tokens not yet sent (None without logprobs)."""
        if not self.logprobs:
            return None
        fresh = entries[self.sent_logprobs :]
        self.sent_logprobs = len(entries)
        return [self.text_of.logprob(e) for e in fresh]

    def all_logprobs(self, entries: list[TokenLogprob]) -> list[dict[str, Any]] | None:
        """The logprobs of the tokens whose text is in the answer (a stop string's are left out)."""
        if not self.logprobs:
            return None
        total = len(self.text.encode())
        kept, used = [], 0
        for entry in entries:
            used += len(self.text_of.bytes_of(entry.token))
            if used > total:
                break
            kept.append(self.text_of.logprob(entry))
        return kept
