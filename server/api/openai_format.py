"""OpenAI's JSON shapes: chat.completion, chat.completion.chunk, usage, the model list.

ozfig's extra field is `sources` (the web snippets given to the model, `[{url, text}]`),
on the completion and on the first chunk of a stream, present only when `web_search` was on.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def finish_reason(engine_reason: str) -> str:
    """The engine's "stop" (end of text or a stop string) and "length" are OpenAI's own words."""
    return "length" if engine_reason == "length" else "stop"


@dataclass(frozen=True)
class Completion:
    """What every object of one answer shares."""

    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))

    def _head(self, obj: str) -> dict[str, object]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def completion(
        self,
        content: str,
        reason: str,
        prompt_tokens: int,
        completion_tokens: int,
        sources: list[dict[str, str]] | None,
    ) -> dict[str, object]:
        body = self._head("chat.completion")
        body["choices"] = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(reason),
            }
        ]
        body["usage"] = usage(prompt_tokens, completion_tokens)
        if sources is not None:
            body["sources"] = sources
        return body

    def chunk(
        self,
        delta: dict[str, str],
        reason: str | None = None,
        *,
        with_usage_field: bool = False,
        sources: list[dict[str, str]] | None = None,
    ) -> dict[str, object]:
        body = self._head("chat.completion.chunk")
        body["choices"] = [
            {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": None if reason is None else finish_reason(reason),
            }
        ]
        if with_usage_field:
            body["usage"] = None
        if sources is not None:
            body["sources"] = sources
        return body

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> dict[str, object]:
        body = self._head("chat.completion.chunk")
        body["choices"] = []
        body["usage"] = usage(prompt_tokens, completion_tokens)
        return body


def model_entry(model_id: str, created: int) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "ozfig"}


def model_list(entries: list[dict[str, object]]) -> dict[str, object]:
    return {"object": "list", "data": entries}
