"""OpenAI's JSON shapes: chat.completion, chat.completion.chunk, usage, the model list.

Each body is built from its model in `response_schema.py` (the one declaration /openapi.json is made
from). ozfig's extra field is `sources` (the web sources given to the model, `[{n, title, url, text}]`),
on the completion and on the first chunk of a stream, present only when `web_search` was on.
The chunks that carry a piece of the answer, one per token, are built as text (`content_events`):
the same bytes as the model's, without three model objects and a dump per token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .response_schema import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChoiceFinishReason,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    PromptTokensDetails,
    Source,
    ToolCall,
    Usage,
)
from .sse import sse_data, to_json


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached_tokens),
    )


def finish_reason(engine_reason: str, called: bool = False) -> ChoiceFinishReason:
    """The engine's "stop" (end of text or a stop string) and "length" are OpenAI's own words;
    an answer that ended by itself after tool calls ends with "tool_calls"."""
    if engine_reason == "length":
        return "length"
    return "tool_calls" if called else "stop"


def _logprobs(entries: list[dict[str, Any]] | None) -> ChoiceLogprobs | None:
    return None if entries is None else ChoiceLogprobs.model_validate({"content": entries, "refusal": None})


def _sources(sources: list[dict[str, object]] | None, search_query: str | None = None) -> dict[str, Any]:
    if sources is None:
        return {}
    return {"sources": [Source.model_validate(s) for s in sources], "search_query": search_query or ""}


@dataclass(frozen=True)
class Completion:
    """What every object of one answer shares."""

    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))

    def completion(
        self,
        content: str,
        reason: str,
        prompt_tokens: int,
        completion_tokens: int,
        sources: list[dict[str, object]] | None,
        cached_tokens: int = 0,
        search_query: str | None = None,
        *,
        tool_calls: list[dict[str, Any]] | None = None,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> dict[str, object]:
        calls = {"tool_calls": [ToolCall.model_validate(c) for c in tool_calls]} if tool_calls else {}
        text = None if tool_calls and not content.strip() else content
        message = AssistantMessage(role="assistant", content=text, refusal=None, **calls)  # type: ignore[arg-type]
        choice = Choice(
            index=0, message=message, logprobs=_logprobs(logprobs), finish_reason=finish_reason(reason, bool(calls))
        )
        body = ChatCompletion(
            id=self.id,
            object="chat.completion",
            created=self.created,
            model=self.model,
            choices=[choice],
            usage=usage(prompt_tokens, completion_tokens, cached_tokens),
            **_sources(sources, search_query),
        )
        return body.model_dump(exclude_unset=True)

    def chunk(
        self,
        delta: dict[str, Any],
        reason: str | None = None,
        *,
        with_usage_field: bool = False,
        sources: list[dict[str, object]] | None = None,
        search_query: str | None = None,
        logprobs: list[dict[str, Any]] | None = None,
        called: bool = False,
    ) -> dict[str, object]:
        choice = ChunkChoice(
            index=0,
            delta=Delta.model_validate(delta),
            logprobs=_logprobs(logprobs),
            finish_reason=None if reason is None else finish_reason(reason, called),
        )
        extra: dict[str, Any] = {"usage": None} if with_usage_field else {}
        body = ChatCompletionChunk(
            id=self.id,
            object="chat.completion.chunk",
            created=self.created,
            model=self.model,
            choices=[choice],
            **extra,
            **_sources(sources, search_query),
        )
        return body.model_dump(exclude_unset=True)

    def content_events(self, *, with_usage_field: bool = False) -> Callable[[str], str]:
        """The SSE event of a chunk with one piece of content: `sse_event(self.chunk({"content":
        piece}, with_usage_field=...))`, field for field, built from two fixed strings."""
        head = to_json(
            {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        )
        head = head[:-1] + ',"choices":[{"index":0,"delta":{"content":'
        tail = '},"logprobs":null,"finish_reason":null}]' + (',"usage":null}' if with_usage_field else "}")

        def event(piece: str) -> str:
            return sse_data(head + to_json(piece) + tail)

        return event

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, object]:
        body = ChatCompletionChunk(
            id=self.id,
            object="chat.completion.chunk",
            created=self.created,
            model=self.model,
            choices=[],
            usage=usage(prompt_tokens, completion_tokens, cached_tokens),
            **_sources(None),
        )
        return body.model_dump(exclude_unset=True)


def model_list(model_id: str, created: int) -> dict[str, object]:
    card = ModelCard(id=model_id, object="model", created=created, owned_by="ozfig")
    return ModelList(object="list", data=[card]).model_dump()
