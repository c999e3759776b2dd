"""POST /v1/completions: a prompt as text continued by the same engine, no chat template.

The prompt is tokenized as llama-server tokenizes it (BOS when the vocabulary asks for it,
special tokens read: the client owns the whole prompt), checked against the context and
the queue before the answer starts, and answered as OpenAI's `text_completion` (streamed
as Server-Sent Events of the same objects, `data: [DONE]` last).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ozfig.engine.engine import Generation, check_prompt_fits
from ozfig.engine.jobs import Job
from ozfig.engine.logprobs import TokenLogprob

from .chat_answer import TokenText
from .chat_job import check_logit_bias, sampling_of
from .common import check_capacity, check_input_chars, json_answer, read_json_body, runtime_of
from .completion_request import TextRequest, parse_completion_request
from .http_errors import stream_error
from .openai_format import usage
from .response_schema import CompletionChoice, CompletionLogprobs, TextCompletion
from .sse import SSE_DONE, SSE_HEARTBEAT, SSE_MEDIA_TYPE, StreamedAnswer, sse_event


def legacy_logprobs(text_of: TokenText, entries: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """OpenAI's completion logprobs: tokens, token_logprobs, top_logprobs, text_offset."""
    out: dict[str, list[Any]] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for entry in entries:
        first = text_of.entry(entry.token, entry.logprob)
        out["tokens"].append(first["token"])
        out["token_logprobs"].append(first["logprob"])
        top: dict[str, float] = {}
        for token, lp in entry.top:
            alt = text_of.entry(token, lp)
            top.setdefault(alt["token"], alt["logprob"])
        out["top_logprobs"].append(top)
        out["text_offset"].append(offset)
        offset += len(first["token"])
    return out


class TextShape:
    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "cmpl-" + uuid.uuid4().hex
        self.created = int(time.time())

    def body(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, object]:
        completion = TextCompletion(
            id=self.id,
            object="text_completion",
            created=self.created,
            model=self.model,
            choices=[CompletionChoice.model_validate(c) for c in choices],
            **extra,
        )
        return completion.model_dump(exclude_unset=True)

    def choice(self, text: str, reason: str | None, logprobs: dict[str, Any] | None) -> dict[str, Any]:
        lp = None if logprobs is None else CompletionLogprobs.model_validate(logprobs)
        finish = None if reason is None else ("length" if reason == "length" else "stop")
        return {"text": text, "index": 0, "logprobs": lp, "finish_reason": finish}


class TextJob:
    def __init__(self, request: Request, text: TextRequest) -> None:
        self.runtime = runtime = runtime_of(request)
        self.text = text
        settings = runtime.settings
        check_input_chars(len(text.prompt), settings.max_input_chars)
        self.engine, _ = runtime.require_engine()
        model = self.engine.model
        check_logit_bias(text.logit_bias, model.n_vocab)
        self.sampling = sampling_of(
            text.body, settings, stop=text.stop, logit_bias=text.logit_bias, logprobs=text.logprobs
        )
        self.max_tokens = min(text.max_tokens or settings.max_tokens, settings.max_tokens)
        self.tokens: list[int] = []
        self.text_of = TokenText(model)

    async def check(self) -> None:
        model = self.engine.model
        self.tokens = await asyncio.to_thread(model.tokenize, self.text.prompt, add_special=True, parse_special=True)
        room = check_prompt_fits(len(self.tokens), self.runtime.settings.ctx)
        self.max_tokens = min(self.max_tokens, room)
        check_capacity(self.engine)

    def generate(self) -> contextlib.AbstractAsyncContextManager[Generation]:
        return self.engine.generate(Job(self.tokens, self.max_tokens, self.sampling))

    def logprobs(self, entries: list[TokenLogprob], offset: int = 0) -> dict[str, Any] | None:
        return None if self.text.logprobs is None else legacy_logprobs(self.text_of, entries, offset)


async def completions(request: Request) -> Response:
    runtime = runtime_of(request)
    text = parse_completion_request(await read_json_body(request, runtime.settings.max_body_bytes))
    job = TextJob(request, text)
    await job.check()
    shape = TextShape(text.model or runtime.settings.model_name)
    if text.stream:
        return await stream_completion(request, job, shape)

    async def answer() -> dict[str, object]:
        async with job.generate() as gen:
            content = await gen.text()
        result = gen.result
        assert result is not None
        choice = shape.choice(content, result.reason, job.logprobs(gen.logprobs))
        return shape.body([choice], usage=usage(result.prompt_tokens, result.completion_tokens))

    return await json_answer(request, answer())


async def stream_completion(request: Request, job: TextJob, shape: TextShape) -> Response:
    stack = contextlib.AsyncExitStack()
    gen = await stack.enter_async_context(job.generate())  # queued now: a full queue is a 503
    extra: dict[str, Any] = {"usage": None} if job.text.include_usage else {}

    async def chunks() -> AsyncGenerator[str, None]:
        async with stack:
            sent = offset = 0
            async for piece in gen:
                if piece:
                    logprobs = job.logprobs(gen.logprobs[sent:], offset)
                    sent, offset = len(gen.logprobs), offset + len(piece)
                    yield sse_event(shape.body([shape.choice(piece, None, logprobs)], **extra))
            result = gen.result
            assert result is not None
            rest = job.logprobs(gen.logprobs[sent:], offset) if gen.logprobs[sent:] else None
            yield sse_event(shape.body([shape.choice("", result.reason, rest)], **extra))
            if job.text.include_usage:
                yield sse_event(shape.body([], usage=usage(result.prompt_tokens, result.completion_tokens)))
            yield SSE_DONE

    def on_error(exc: Exception) -> str:
        _, body = stream_error(request, exc)
        return sse_event(body)

    settings = job.runtime.settings
    return StreamedAnswer(
        chunks(),
        media_type=SSE_MEDIA_TYPE,
        heartbeat=settings.heartbeat,
        heartbeat_chunk=SSE_HEARTBEAT,
        on_error=on_error,
        cleanup=stack,
        send_timeout=settings.send_timeout,
    )
