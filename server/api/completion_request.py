"""The request body of POST /v1/completions (a prompt as text, no chat template), declared once
as a pydantic model, and parsed into what the route uses (its first problem a 400 naming it).

Refused with a reason: `suffix` (fill-in-the-middle), `echo` true, `n` or `best_of` other
than 1 (a prompt that is not one string is a plain 400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ozfig import limits
from ozfig.errors import InvalidFieldError

from .chat_request import field_error
from .request_schema import MAX_TOP_LOGPROBS, LogitBias, Stop, StreamOptions

UNSUPPORTED_COMPLETION: dict[str, str] = {
    "suffix": "suffix (fill-in-the-middle) is not supported: the served models are not trained to fill a gap; "
    "send the text before it as the prompt",
    "echo": "echo must be false: the answer does not repeat the prompt",
    "n": "n must be 1: ozfig generates one choice per request",
    "best_of": "best_of must be 1: ozfig generates one choice per request",
}


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, frozen=True)


class CompletionRequest(_Request):
    """The body of POST /v1/completions."""

    prompt: str = Field(
        min_length=1,
        description="the text to continue, as it is (special tokens are read); one string (lists of prompts "
        "or of token ids are not supported)",
    )
    model: str | None = Field(None, description="accepted and echoed; the one loaded model answers")
    max_tokens: int | None = Field(None, ge=1, description="default and cap: --max-tokens")
    temperature: float | None = Field(
        None, ge=limits.TEMPERATURE_MIN, le=limits.TEMPERATURE_MAX, description="default --temperature"
    )
    top_p: float | None = Field(
        None, ge=limits.TOP_P_MIN, le=limits.TOP_P_MAX, description=f"default {limits.TOP_P_DEFAULT}"
    )
    top_k: int | None = Field(None, ge=0, le=1_000_000, description="llama.cpp's: default 40; 0 turns it off")
    min_p: float | None = Field(None, ge=0, le=1, description="llama.cpp's: default 0.05")
    repeat_penalty: float | None = Field(None, gt=0, le=10, description="llama.cpp's: default 1.0 (off)")
    frequency_penalty: float | None = Field(None, ge=limits.PENALTY_MIN, le=limits.PENALTY_MAX)
    presence_penalty: float | None = Field(None, ge=limits.PENALTY_MIN, le=limits.PENALTY_MAX)
    stop: Stop | None = Field(None, description=f"a string or up to {limits.MAX_STOPS} strings")
    seed: int | None = None
    stream: bool | None = Field(None, description="true: Server-Sent Events of text_completion objects")
    stream_options: StreamOptions | None = Field(None, description="only with stream: true")
    logprobs: int | None = Field(
        None, ge=0, le=MAX_TOP_LOGPROBS, description="each token's logprob and this many most likely tokens"
    )
    logit_bias: LogitBias | None = Field(None, description="token id (as a string) -> a bias from -100 to 100")
    echo: Literal[False] | None = Field(None, description="only false")
    suffix: None = Field(None, description="not supported (fill-in-the-middle)")
    n: Literal[1] | None = Field(None, description="only 1")
    best_of: Literal[1] | None = Field(None, description="only 1")


@dataclass(frozen=True)
class TextRequest:
    prompt: str
    model: str | None
    max_tokens: int | None
    stream: bool
    include_usage: bool
    logprobs: int | None
    logit_bias: tuple[tuple[int, float], ...]
    stop: tuple[str, ...]
    body: CompletionRequest


def parse_completion_request(body: bytes) -> TextRequest:
    try:
        request = CompletionRequest.model_validate_json(body)
    except ValidationError as exc:
        raise field_error(exc, UNSUPPORTED_COMPLETION) from None
    stream = bool(request.stream)
    if request.stream_options is not None and not stream:
        raise InvalidFieldError("stream_options", "stream_options is only allowed when stream is true")
    stop = request.stop or ()
    return TextRequest(
        prompt=request.prompt,
        model=request.model,
        max_tokens=request.max_tokens,
        stream=stream,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        logprobs=request.logprobs,
        logit_bias=tuple((int(k), v) for k, v in (request.logit_bias or {}).items()),
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        body=request,
    )
