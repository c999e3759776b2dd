"""A chat request body made into what the answer code uses, or its first problem as a 400.

`parse_chat_request` validates the body with `request_schema.ChatCompletionRequest` and turns
the first problem into an `InvalidFieldError` whose `param` is the path of the field, as
`messages[0].role`; an error on a field ozfig cannot honour becomes `UnsupportedFieldError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from ozfig.errors import InvalidFieldError, InvalidJSONError, RequestError, UnsupportedFieldError

from .request_schema import UNSUPPORTED, ChatCompletionRequest


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
