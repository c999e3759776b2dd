"""The request body of POST /v1/chat/completions, declared once as pydantic models.

`chat_request.parse_chat_request` validates a body with `ChatCompletionRequest`, and
GET /openapi.json is generated from the same models (see `openapi.py`).

Fields ozfig understands but cannot honour (`n` other than 1, tools, logprobs, ...) are
declared with the only values it accepts (`UNSUPPORTED` says why for each); fields it does
not know are ignored, as many clients send extras.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ozfig import limits

MAX_STOPS = limits.MAX_STOPS
Role = Literal["system", "developer", "user", "assistant"]


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
    content: Content
    name: str | None = Field(None, description="accepted and ignored")
    tool_calls: Empty | None = Field(None, description="not supported: tool calls")


class StreamOptions(_Request):
    include_usage: bool | None = Field(None, description="a last chunk with the usage")


class ResponseFormat(_Request):
    type: Literal["text"]


# Fields ozfig cannot honour, and why: an error on any of them is an UnsupportedFieldError.
UNSUPPORTED: dict[str, str] = {
    "n": "n must be 1: ozfig generates one choice per request",
    "tools": "tools (function calling) are not supported",
    "functions": "functions (function calling) are not supported",
    "tool_choice": "tool_choice is not supported (tools are not)",
    "tool_calls": "tool calls are not supported",
    "logprobs": "logprobs are not supported",
    "top_logprobs": "top_logprobs are not supported",
    "response_format": "only response_format {'type': 'text'} is supported",
    "logit_bias": "logit_bias is not supported",
}


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
    tools: Empty | None = Field(None, description="not supported")
    functions: Empty | None = Field(None, description="not supported")
    tool_choice: Literal["none"] | None = Field(None, description="not supported beyond 'none'")
    logprobs: Literal[False] | None = Field(None, description="not supported")
    top_logprobs: None = Field(None, description="not supported")
    response_format: ResponseFormat | None = Field(None, description="only {'type': 'text'}")
    logit_bias: Annotated[dict[str, Any], Field(max_length=0)] | None = Field(
        None, description="not supported"
    )
