"""The body of POST /v1/chat/completions, checked field by field.

Every problem is an `InvalidFieldError` naming the field (`messages[1].role`), which
http_errors turns into a 400 in OpenAI's error shape with `param` set. Fields ozfig
understands but cannot honour (`n` other than 1, tools, logprobs) get
`UnsupportedFieldError`; fields it does not know are ignored, as many clients send extras.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidFieldError, UnsupportedFieldError

ROLES = ("system", "developer", "user", "assistant")
MAX_STOPS = 4


@dataclass(frozen=True)
class ChatRequest:
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
    def last_user_index(self) -> int | None:
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i]["role"] == "user":
                return i
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _optional_number(body: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_number(value) or value != value:
        raise InvalidFieldError(name, f"{name} must be a number from {low:g} to {high:g}")
    if not low <= value <= high:
        raise InvalidFieldError(name, f"{name} must be from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _optional_int(body: Mapping[str, Any], name: str, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidFieldError(name, f"{name} must be an integer")
    if value < low:
        raise InvalidFieldError(name, f"{name} must be at least {low}, got {value}")
    return value


def _optional_bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidFieldError(name, f"{name} must be true or false")
    return value


def _content(value: Any, where: str) -> str:
    """A message content: a string, or a list of text parts (joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for j, part in enumerate(value):
            if not isinstance(part, dict):
                raise InvalidFieldError(f"{where}[{j}]", f"{where}[{j}] must be an object")
            if part.get("type") != "text":
                raise UnsupportedFieldError(
                    f"{where}[{j}].type", f"{where}[{j}].type must be 'text': this model reads text only"
                )
            if not isinstance(part.get("text"), str):
                raise InvalidFieldError(f"{where}[{j}].text", f"{where}[{j}].text must be a string")
            texts.append(part["text"])
        return "".join(texts)
    raise InvalidFieldError(where, f"{where} must be a string or a list of text parts")


def parse_messages(value: Any) -> list[dict[str, str]]:
    if value is None:
        raise InvalidFieldError("messages", "messages is required: a list of {role, content} objects")
    if not isinstance(value, list) or not value:
        raise InvalidFieldError("messages", "messages must be a non-empty list of {role, content} objects")
    messages = []
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidFieldError(where, f"{where} must be an object with role and content")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidFieldError(
                f"{where}.role", f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}"
            )
        if message.get("tool_calls"):
            raise UnsupportedFieldError(f"{where}.tool_calls", "tool calls are not supported")
        if "content" not in message or message["content"] is None:
            raise InvalidFieldError(f"{where}.content", f"{where}.content is required")
        content = _content(message["content"], f"{where}.content")
        messages.append({"role": "system" if role == "developer" else role, "content": content})
    if not any(m["role"] == "user" for m in messages):
        raise InvalidFieldError("messages", "messages must contain at least one user message")
    return messages


def parse_stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise InvalidFieldError("stop", "stop must be a string or a list of strings")
    if len(stops) > MAX_STOPS:
        raise InvalidFieldError("stop", f"stop takes at most {MAX_STOPS} strings, got {len(stops)}")
    if any(not s for s in stops):
        raise InvalidFieldError("stop", "stop strings must not be empty")
    return tuple(stops)


def check_unsupported(body: Mapping[str, Any]) -> None:
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise InvalidFieldError("n", "n must be a positive integer")
    if n is not None and n != 1:
        raise UnsupportedFieldError("n", f"n must be 1: ozfig generates one choice per request, got {n}")
    if body.get("logprobs"):
        raise UnsupportedFieldError("logprobs", "logprobs are not supported")
    if body.get("top_logprobs") is not None:
        raise UnsupportedFieldError("top_logprobs", "top_logprobs are not supported")
    if body.get("tools"):
        raise UnsupportedFieldError("tools", "tools (function calling) are not supported")
    if body.get("functions"):
        raise UnsupportedFieldError("functions", "functions (function calling) are not supported")
    if body.get("tool_choice") not in (None, "none"):
        raise UnsupportedFieldError("tool_choice", "tool_choice is not supported (tools are not)")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict) or response_format.get("type") != "text"
    ):
        raise UnsupportedFieldError("response_format", "only response_format {'type': 'text'} is supported")
    if body.get("logit_bias"):
        raise UnsupportedFieldError("logit_bias", "logit_bias is not supported")


def parse_chat_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidFieldError("body", "the body must be a JSON object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidFieldError("model", "model must be a string")
    check_unsupported(body)
    messages = parse_messages(body.get("messages"))
    max_tokens = _optional_int(body, "max_tokens", 1)
    max_completion_tokens = _optional_int(body, "max_completion_tokens", 1)
    stream = _optional_bool(body, "stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise InvalidFieldError("stream_options", "stream_options must be an object")
        if not stream:
            raise InvalidFieldError("stream_options", "stream_options is only allowed when stream is true")
        include_usage = options.get("include_usage", False)
        if include_usage is None:
            include_usage = False
        if not isinstance(include_usage, bool):
            raise InvalidFieldError(
                "stream_options.include_usage", "stream_options.include_usage must be true or false"
            )
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InvalidFieldError("seed", "seed must be an integer")
    return ChatRequest(
        messages=messages,
        max_tokens=max_completion_tokens if max_completion_tokens is not None else max_tokens,
        temperature=_optional_number(body, "temperature", 0.0, 2.0),
        top_p=_optional_number(body, "top_p", 0.0, 1.0),
        frequency_penalty=_optional_number(body, "frequency_penalty", -2.0, 2.0),
        presence_penalty=_optional_number(body, "presence_penalty", -2.0, 2.0),
        stop=parse_stop(body.get("stop")),
        seed=seed,
        stream=stream,
        include_usage=include_usage,
        web_search=_optional_bool(body, "web_search"),
        model=model,
    )
