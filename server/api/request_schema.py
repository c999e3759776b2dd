"""The request body of POST /v1/chat/completions, declared once as pydantic models.

`chat_request.parse_chat_request` validates a body with `ChatCompletionRequest`, and
GET /openapi.json is generated from the same models (see `openapi.py`).

Fields ozfig understands but cannot honour (`n` other than 1, the legacy `functions`) are
declared with the only values it accepts (`UNSUPPORTED` says why for each); fields it does
not know are ignored, as many clients send extras. Tools and `response_format` are declared
in `tool_schema.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ozfig import limits

from .tool_schema import MAX_CALLS, MAX_TOOLS, MessageToolCall, ResponseFormat, ToolChoice, ToolDef

MAX_STOPS = limits.MAX_STOPS
MAX_TOP_LOGPROBS = 20
MAX_LOGIT_BIAS = 1024
Role = Literal["system", "developer", "user", "assistant", "tool"]


class _Request(BaseModel):
    # strict: "5" is not an integer, true is not a number; NaN is not a number either
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, frozen=True)


class TextPart(_Request):
    type: Literal["text"] = Field(description="only text parts: this model reads text")
    text: str


def _text_or_parts(value: Any) -> str | None:
    if isinstance(value, str):
        return "<text>"
    if isinstance(value, list):
        return "<parts>"
    return None


Content = Annotated[
    Annotated[str, Tag("<text>")] | Annotated[list[TextPart], Tag("<parts>")],
    Discriminator(
        _text_or_parts,
        custom_error_type="content_type",
        custom_error_message="must be a string or a list of text parts",
    ),
]


def _one_or_many(value: Any) -> str | None:
    if isinstance(value, str):
        return "<one>"
    if isinstance(value, list):
        return "<many>"
    return None


StopText = Annotated[str, Field(min_length=1)]
Stop = Annotated[
    Annotated[StopText, Tag("<one>")] | Annotated[list[StopText], Field(max_length=MAX_STOPS), Tag("<many>")],
    Discriminator(
        _one_or_many,
        custom_error_type="stop_type",
        custom_error_message="must be a string or a list of strings",
    ),
]
Empty = Annotated[list[Any], Field(max_length=0)]


class Message(_Request):
    role: Role = Field(description="`developer` is read as `system`")
    content: Content | None = Field(None, description="required, except on an assistant message with tool_calls")
    name: str | None = Field(None, description="accepted and ignored")
    tool_calls: Annotated[list[MessageToolCall], Field(min_length=1, max_length=MAX_CALLS)] | None = Field(
        None, description="an assistant message's calls"
    )
    tool_call_id: str | None = Field(None, description="a tool message's: the id of the call it answers")


class StreamOptions(_Request):
    include_usage: bool | None = Field(None, description="a last chunk with the usage")


# Fields ozfig cannot honour, and why: an error on any of them is an UnsupportedFieldError.
UNSUPPORTED: dict[str, str] = {
    "n": "n must be 1: ozfig generates one choice per request",
    "functions": "the legacy functions field is not supported: send tools",
    "function_call": "the legacy function_call field is not supported: send tool_choice",
}
LogitBias = Annotated[
    dict[Annotated[str, Field(pattern=r"^\d{1,9}$")], Annotated[float, Field(ge=-100, le=100)]],
    Field(max_length=MAX_LOGIT_BIAS),
]


class ChatCompletionRequest(_Request):
    """The body of POST /v1/chat/completions."""

    messages: list[Message] = Field(min_length=1, description="at least one user message")
    model: str | None = Field(None, description="accepted and echoed; the one loaded model answers")
    max_tokens: int | None = Field(None, ge=1, description="capped at --max-tokens")
    max_completion_tokens: int | None = Field(None, ge=1, description="wins over max_tokens")
    temperature: float | None = Field(
        None, ge=limits.TEMPERATURE_MIN, le=limits.TEMPERATURE_MAX, description="default --temperature"
    )
    top_p: float | None = Field(
        None, ge=limits.TOP_P_MIN, le=limits.TOP_P_MAX, description=f"default {limits.TOP_P_DEFAULT}"
    )
    frequency_penalty: float | None = Field(None, ge=limits.PENALTY_MIN, le=limits.PENALTY_MAX)
    presence_penalty: float | None = Field(None, ge=limits.PENALTY_MIN, le=limits.PENALTY_MAX)
    stop: Stop | None = Field(None, description=f"a string or up to {MAX_STOPS} strings")
    seed: int | None = None
    stream: bool | None = Field(None, description="true: Server-Sent Events of chat.completion.chunk")
    stream_options: StreamOptions | None = Field(None, description="only with stream: true")
    web_search: bool | None = Field(
        None,
        description="ozfig's extra, default false: put numbered web sources for the last user message "
        "into the prompt (the OzFig augmentation) and return them as `sources`",
    )
    n: Literal[1] | None = Field(None, description="only 1")
    tools: Annotated[list[ToolDef], Field(max_length=MAX_TOOLS)] | None = Field(
        None, description="functions the model may call (see docs/api.md for how each model is told)"
    )
    tool_choice: ToolChoice | None = Field(None, description="default 'auto' with tools")
    parallel_tool_calls: bool | None = Field(None, description="default true: more than one call per answer")
    functions: Empty | None = Field(None, description="not supported: send tools")
    function_call: None = Field(None, description="not supported: send tool_choice")
    logprobs: bool | None = Field(None, description="the log probability of each answer token")
    top_logprobs: int | None = Field(
        None, ge=0, le=MAX_TOP_LOGPROBS, description="with logprobs: this many most likely tokens per position"
    )
    response_format: ResponseFormat | None = Field(
        None, description="json_object or json_schema: the content is JSON, enforced by a grammar"
    )
    logit_bias: LogitBias | None = Field(
        None, description="token id (as a string) -> a bias from -100 to 100 added to its logit"
    )
    top_k: int | None = Field(None, ge=0, le=1_000_000, description="llama.cpp's: default 40; 0 turns it off")
    min_p: float | None = Field(None, ge=0, le=1, description="llama.cpp's: default 0.05")
    repeat_penalty: float | None = Field(
        None, gt=0, le=10, description="llama.cpp's: default 1.0 (off), over the last 64 tokens"
    )
