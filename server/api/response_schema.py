"""The response bodies, declared once as pydantic models: /v1 (chat.completion, its stream's
chunks, the model list, errors), /prompt, /health and the errors elsewhere.

The answers are built from these models (see `openai_format.py`), and GET /openapi.json is
generated from the same models (see `openapi.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Response):
    """A numbered web source; `text` is exactly what the prompt held for it, and the answer cites it as [n]."""

    n: int = Field(ge=1)
    title: str
    url: str
    text: str


class PromptTokensDetails(_Response):
    cached_tokens: int = Field(description="Prompt tokens whose KV cache was reused, not computed again.")


class Usage(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class FunctionCall(_Response):
    name: str
    arguments: str = Field(description="JSON text matching the tool's parameters (cut short with finish_reason length)")


class ToolCall(_Response):
    id: str
    type: Literal["function"]
    function: FunctionCall


class AssistantMessage(_Response):
    role: Literal["assistant"]
    content: str | None = Field(description="null when the answer is only tool calls")
    refusal: None
    tool_calls: SkipJsonSchema[None] | list[ToolCall] = Field(None, description="present when the model called tools")


# what OpenAI says of a choice's end (the engine's reasons, ozfig.engine.jobs.FinishReason, map onto it)
ChoiceFinishReason = Literal["stop", "length", "tool_calls"]


class TopLogprob(_Response):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(_Response):
    """A token of the answer, its log probability (from the model's logits before sampling) and
    the `top_logprobs` most likely tokens at its position."""

    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(_Response):
    content: list[TokenLogprob] | None
    refusal: None


class Choice(_Response):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = Field(description="with logprobs: true")
    finish_reason: ChoiceFinishReason


class ChatCompletion(_Response):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: SkipJsonSchema[None] | list[Source] = Field(None, description="ozfig's extra, with web_search")
    search_query: SkipJsonSchema[None] | str = Field(
        None, description="ozfig's extra, with web_search: what the web was asked (a follow-up made whole)"
    )


class FunctionCallDelta(_Response):
    name: SkipJsonSchema[None] | str = None
    arguments: SkipJsonSchema[None] | str = None


class ToolCallDelta(_Response):
    """A call's first delta has its id, type and name; the next ones add fragments of its arguments."""

    index: int
    id: SkipJsonSchema[None] | str = None
    type: SkipJsonSchema[None] | Literal["function"] = None
    function: FunctionCallDelta


class Delta(_Response):
    role: SkipJsonSchema[None] | Literal["assistant"] = None
    content: SkipJsonSchema[None] | str = None
    tool_calls: SkipJsonSchema[None] | list[ToolCallDelta] = None


class ChunkChoice(_Response):
    index: int
    delta: Delta
    logprobs: ChoiceLogprobs | None = Field(description="with logprobs: true, for the tokens of this delta")
    finish_reason: ChoiceFinishReason | None


class ChatCompletionChunk(_Response):
    """One `data:` event of a stream; the stream ends with `data: [DONE]`. With
    stream_options.include_usage every chunk has `usage: null` and a last chunk has
    `choices: []` and the usage."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    sources: SkipJsonSchema[None] | list[Source] = Field(None, description="first chunk, with web_search")
    search_query: SkipJsonSchema[None] | str = Field(None, description="first chunk, with web_search")


class CompletionLogprobs(_Response):
    """/v1/completions' logprobs: per token its text, logprob, most likely alternatives, offset in the text."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(_Response):
    text: str
    index: int
    logprobs: CompletionLogprobs | None
    finish_reason: Literal["stop", "length"] | None


class TextCompletion(_Response):
    """A /v1/completions answer, or with stream: true one `data:` event of it (the last with the
    finish_reason; with stream_options.include_usage a last one with `choices: []` and the usage)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(_Response):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(_Response):
    object: Literal["list"]
    data: list[ModelCard]


class OpenAIErrorDetail(_Response):
    message: str
    type: str = Field(examples=["invalid_request_error", "server_error"])
    param: str | None = Field(description="the field at fault, e.g. messages[0].role")
    code: str = Field(examples=["invalid_value", "invalid_json", "model_loading"])


class OpenAIError(_Response):
    """Errors under /v1/."""

    error: OpenAIErrorDetail


class DetailError(_Response):
    """Errors everywhere else."""

    detail: str
    code: str


class PromptUsage(_Response):
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = Field(description="Prompt tokens whose KV cache was reused, not computed again.")


class PromptAnswer(_Response):
    message: str
    sources: list[Source]
    usage: PromptUsage


class PromptToken(_Response):
    """The data of a /prompt `token` event."""

    text: str


class PromptDone(PromptAnswer):
    """The data of a /prompt `done` event."""

    finish_reason: ChoiceFinishReason


class Hint(_Response):
    message: str


class Health(_Response):
    status: Literal["ok"]
    reason: Literal["ready"]
    detail: SkipJsonSchema[None] | str = Field(None, description="never set when ok")
    model: str
    ctx: int
    gpu: bool
    gpu_layers: int
    slots: int
    busy_slots: int
    queue_depth: int
    threads: int = Field(ge=1, description="decoding threads")
    threads_from: Literal["setting", "affinity", "cgroup", "cpu_count"] = Field(
        description="--threads, or the CPUs this process may run on: its affinity mask or its cgroup's quota"
    )


class HealthProblem(_Response):
    status: Literal["loading", "draining", "failed"]
    reason: str = Field(description="a stable code: model_loading, draining, or why it failed")
    detail: SkipJsonSchema[None] | str = Field(
        None, description="why it failed, in words: only for a request with the admin key"
    )
