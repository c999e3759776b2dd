"""The HTTP bodies, declared once as pydantic models.

The request of POST /v1/chat/completions is validated with `ChatCompletionRequest`
(`parse_chat_request` turns the first problem into an `InvalidFieldError` whose `param`
is the path of the field, as `messages[0].role`); the answers are built from the response
models; GET /openapi.json is generated from the same models (see `openapi.py`).

Fields ozfig understands but cannot honour (`n` other than 1, tools, logprobs, ...) are
declared with the only values it accepts, and their errors become `UnsupportedFieldError`.
Fields it does not know are ignored, as many clients send extras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError
from pydantic.json_schema import SkipJsonSchema

from ozfig.errors import InvalidFieldError, InvalidJSONError, RequestError, UnsupportedFieldError

MAX_STOPS = 4
Role = Literal["system", "developer", "user", "assistant"]


class _Request(BaseModel):
    # strict: "5" is not an integer, true is not a number; NaN is not a number either
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the request -------------------------------------------------------------------------


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
    temperature: float | None = Field(None, ge=0, le=2, description="default --temperature")
    top_p: float | None = Field(None, ge=0, le=1, description="default 0.95")
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
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


@dataclass(frozen=True)
class ChatRequest:
    """A valid chat request, as the answer code uses it."""

    messages: list[dict[str, str]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    web_search: bool = False
    model: str | None = None

    @property
    def input_chars(self) -> int:
        return sum(len(m["content"]) for m in self.messages)


def param_path(loc: tuple[int | str, ...]) -> str:
    """`("messages", 0, "role")` → `messages[0].role`; union tags (`<text>`) are left out."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith("<"):
            path += f".{part}" if path else part
    return path or "body"


def _field_error(exc: ValidationError) -> RequestError:
    error = exc.errors(include_url=False)[0]
    if error["type"] == "json_invalid":
        detail = str(error["msg"]).removeprefix("Invalid JSON: ")
        if "surrogate" in detail or "hex escape" in detail:
            detail += " (a lone UTF-16 surrogate, \\ud800 to \\udfff, is not valid Unicode)"
        return InvalidJSONError(f"the body is not valid JSON: {detail}")
    loc = tuple(error["loc"])
    param = param_path(loc)
    names = [p for p in loc if isinstance(p, str) and not p.startswith("<")]
    for name in reversed(names[-2:]):  # `n`, or `messages[0].tool_calls`, or a content part's `type`
        if name in UNSUPPORTED or (name == "type" and "content" in names):
            why = UNSUPPORTED.get(name, f"{param} must be 'text': this model reads text only")
            return UnsupportedFieldError(param, f"{why}, got {error['input']!r}"[:300])
    if error["type"] == "model_type" and not loc:
        return InvalidFieldError("body", "the body must be a JSON object")
    return InvalidFieldError(param, f"{param}: {error['msg']}")


def parse_chat_request(body: bytes) -> ChatRequest:
    """The request in `body` (UTF-8 JSON), or the first problem as a 400 naming its field."""
    try:
        request = ChatCompletionRequest.model_validate_json(body)
    except ValidationError as exc:
        raise _field_error(exc) from None
    messages = [
        {
            "role": "system" if m.role == "developer" else m.role,
            "content": m.content if isinstance(m.content, str) else "".join(p.text for p in m.content),
        }
        for m in request.messages
    ]
    if not any(m["role"] == "user" for m in messages):
        raise InvalidFieldError("messages", "messages must contain at least one user message")
    stream = bool(request.stream)
    if request.stream_options is not None and not stream:
        raise InvalidFieldError("stream_options", "stream_options is only allowed when stream is true")
    stop = request.stop or ()
    return ChatRequest(
        messages=messages,
        max_tokens=request.max_completion_tokens or request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        frequency_penalty=request.frequency_penalty,
        presence_penalty=request.presence_penalty,
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        seed=request.seed,
        stream=stream,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        web_search=bool(request.web_search),
        model=request.model,
    )


# --- the answers -------------------------------------------------------------------------


class Source(_Response):
    """A numbered web source; `text` is exactly what the prompt held for it, and the answer cites it as [n]."""

    n: int = Field(ge=1)
    title: str
    url: str
    text: str


class Usage(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(_Response):
    role: Literal["assistant"]
    content: str
    refusal: None


FinishReason = Literal["stop", "length"]


class Choice(_Response):
    index: int
    message: AssistantMessage
    logprobs: None
    finish_reason: FinishReason


class ChatCompletion(_Response):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: SkipJsonSchema[None] | list[Source] = Field(None, description="ozfig's extra, with web_search")


class Delta(_Response):
    role: SkipJsonSchema[None] | Literal["assistant"] = None
    content: SkipJsonSchema[None] | str = None


class ChunkChoice(_Response):
    index: int
    delta: Delta
    logprobs: None
    finish_reason: FinishReason | None


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


class PromptAnswer(_Response):
    message: str
    sources: list[Source]
    usage: PromptUsage


class PromptToken(_Response):
    """The data of a /prompt `token` event."""

    text: str


class PromptDone(PromptAnswer):
    """The data of a /prompt `done` event."""

    finish_reason: FinishReason


class Hint(_Response):
    message: str


class Health(_Response):
    status: Literal["ok"]
    model: str
    ctx: int
    gpu: bool
    gpu_layers: int
    slots: int
    busy_slots: int
    queue_depth: int


class HealthProblem(_Response):
    status: Literal["loading", "failed"]
    error: SkipJsonSchema[None] | str = Field(None, description="why it failed")
