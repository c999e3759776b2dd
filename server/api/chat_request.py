"""A chat request body made into what the answer code uses, or its first problem as a 400.

`parse_chat_request` validates the body with `request_schema.ChatCompletionRequest` and turns
the first problem into an `InvalidFieldError` whose `param` is the path of the field, as
`messages[0].role`; an error on a field ozfig cannot honour becomes `UnsupportedFieldError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from ozfig.errors import InvalidFieldError, InvalidJSONError, RequestError, UnsupportedFieldError
from ozfig.tools.calls import NO_PARAMETERS, Tool, ToolUse

from .request_schema import UNSUPPORTED, ChatCompletionRequest, Message
from .tool_schema import JsonObjectFormat, JsonSchemaFormat, NamedToolChoice

OutputFormat = Literal["text", "json_object", "json_schema"]


@dataclass(frozen=True)
class ChatRequest:
    """A valid chat request, as the answer code uses it."""

    messages: list[dict[str, Any]]  # role, content (a string); tool_calls, tool_call_id where given
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
    tool_use: ToolUse | None = None  # with tools
    output: OutputFormat = "text"  # response_format
    json_schema: dict[str, Any] | None = None  # with output "json_schema"
    logprobs: int | None = None  # None: no logprobs; n: and the n most likely tokens at each
    logit_bias: tuple[tuple[int, float], ...] = field(default_factory=tuple)
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None

    @property
    def input_chars(self) -> int:
        calls = (c["arguments"] for m in self.messages for c in m.get("tool_calls", ()))
        return sum(len(m["content"]) for m in self.messages) + sum(len(a) for a in calls)


def param_path(loc: tuple[int | str, ...]) -> str:
    """`("messages", 0, "role")` → `messages[0].role`; union tags (`<text>`) are left out."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith("<") and part != "[key]":
            path += f".{part}" if path else part
    return path or "body"


def field_error(exc: ValidationError, unsupported: dict[str, str] = UNSUPPORTED) -> RequestError:
    """The first problem pydantic found in a body, as the 400 that names its field."""
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
        if name in unsupported or (name == "type" and "content" in names):
            why = unsupported.get(name, f"{param} must be 'text': this model reads text only")
            return UnsupportedFieldError(param, f"{why}, got {error['input']!r}"[:300])
    if error["type"] == "model_type" and not loc:
        return InvalidFieldError("body", "the body must be a JSON object")
    return InvalidFieldError(param, f"{param}: {error['msg']}")


def _messages(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    call_ids: set[str] = set()
    for i, m in enumerate(request.messages):
        out.append(_message(m, i, call_ids))
    if not any(m["role"] == "user" for m in out):
        raise InvalidFieldError("messages", "messages must contain at least one user message")
    return out


def _message(m: Message, i: int, call_ids: set[str]) -> dict[str, Any]:
    role = "system" if m.role == "developer" else m.role
    if m.tool_calls and role != "assistant":
        raise InvalidFieldError(f"messages[{i}].tool_calls", "only an assistant message carries tool_calls")
    if m.content is None and not m.tool_calls:
        raise InvalidFieldError(f"messages[{i}].content", f"messages[{i}].content is required")
    content = m.content if isinstance(m.content, str) or m.content is None else "".join(p.text for p in m.content)
    message: dict[str, Any] = {"role": role, "content": content or ""}
    if m.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in m.tool_calls
        ]
        call_ids.update(c.id for c in m.tool_calls)
    if role == "tool":
        if m.tool_call_id not in call_ids:
            raise InvalidFieldError(
                f"messages[{i}].tool_call_id",
                f"messages[{i}].tool_call_id must be the id of a call in an earlier assistant message",
            )
        message["tool_call_id"] = m.tool_call_id
    return message


def _tool_use(request: ChatCompletionRequest) -> ToolUse | None:
    tools: list[Tool] = []
    for i, t in enumerate(request.tools or ()):
        if any(t.function.name == other.name for other in tools):
            raise InvalidFieldError(f"tools[{i}].function.name", f"two tools are named {t.function.name!r}")
        tools.append(Tool(t.function.name, t.function.description, t.function.parameters or NO_PARAMETERS))
    choice = request.tool_choice
    if not tools:
        if choice is not None and choice != "none":
            raise InvalidFieldError("tool_choice", "tool_choice other than 'none' needs tools")
        return None
    parallel = request.parallel_tool_calls is not False
    if isinstance(choice, NamedToolChoice):
        name = choice.function.name
        if not any(t.name == name for t in tools):
            raise InvalidFieldError("tool_choice.function.name", f"no tool is named {name!r}")
        return ToolUse(tuple(tools), "function", name, parallel)
    return ToolUse(tuple(tools), choice or "auto", None, parallel)


def _output(request: ChatCompletionRequest, tool_use: ToolUse | None) -> tuple[OutputFormat, Any]:
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return "text", None
    if tool_use is not None and tool_use.choice != "none":
        raise UnsupportedFieldError(
            "response_format",
            f"response_format {fmt.type} together with tools is not supported: send one of them "
            "(or tool_choice 'none')",
        )
    if isinstance(fmt, JsonObjectFormat):
        return "json_object", None
    assert isinstance(fmt, JsonSchemaFormat)
    if fmt.json_schema.json_schema is None:
        raise InvalidFieldError("response_format.json_schema.schema", "response_format.json_schema.schema is required")
    return "json_schema", fmt.json_schema.json_schema


def parse_chat_request(body: bytes) -> ChatRequest:
    """The request in `body` (UTF-8 JSON), or the first problem as a 400 naming its field."""
    try:
        request = ChatCompletionRequest.model_validate_json(body)
    except ValidationError as exc:
        raise field_error(exc) from None
    messages = _messages(request)
    stream = bool(request.stream)
    if request.stream_options is not None and not stream:
        raise InvalidFieldError("stream_options", "stream_options is only allowed when stream is true")
    if request.top_logprobs is not None and not request.logprobs:
        raise InvalidFieldError("top_logprobs", "top_logprobs needs logprobs: true")
    tool_use = _tool_use(request)
    output, schema = _output(request, tool_use)
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
        tool_use=tool_use,
        output=output,
        json_schema=schema,
        logprobs=(request.top_logprobs or 0) if request.logprobs else None,
        logit_bias=tuple((int(k), v) for k, v in (request.logit_bias or {}).items()),
        top_k=request.top_k,
        min_p=request.min_p,
        repeat_penalty=request.repeat_penalty,
    )
