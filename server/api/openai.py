"""POST /v1/chat/completions and GET /v1/models, as OpenAI's clients expect them.

Everything that can be checked before an answer starts is checked first, so that a bad
field, a prompt that cannot fit, a loading model or a full queue get their own status
(400, 503) even on a streamed request. Without web search the generation is queued
before the 200 is sent; with it, the search runs inside the stream under heartbeats.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncGenerator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ozfig.engine.engine import Generation

from ..settings import Settings
from .chat_job import ChatJob
from .chat_request import parse_chat_request
from .common import json_answer, read_json_body, runtime_of
from .http_errors import stream_error
from .openai_format import Completion, model_list
from .sse import SSE_DONE, SSE_HEARTBEAT, SSE_MEDIA_TYPE, StreamedAnswer, sse_event

log = logging.getLogger(__name__)


def model_id(settings: Settings) -> str:
    return settings.model_name


async def models(request: Request) -> Response:
    runtime = runtime_of(request)
    runtime.require_engine()
    assert runtime.model is not None
    created = int(os.path.getmtime(runtime.model.path))
    return JSONResponse(model_list(model_id(runtime.settings), created))


async def chat_completions(request: Request) -> Response:
    runtime = runtime_of(request)
    chat = parse_chat_request(await read_json_body(request, runtime.settings.max_body_bytes))
    job = ChatJob(runtime, chat)
    await job.check()
    shape = Completion(model=chat.model or model_id(runtime.settings))
    if chat.stream:
        return await stream_answer(request, job, shape)

    async def answer() -> dict[str, object]:
        built = await job.prompt()
        reader = job.reader()
        async with job.generate(built) as gen:
            async for piece in gen:
                reader.feed(piece)
        reader.finish()
        assert gen.result is not None
        result = gen.result
        return shape.completion(
            reader.content,
            result.reason,
            result.prompt_tokens,
            result.completion_tokens,
            job.sources(built),
            result.cached_tokens,
            job.search_query(),
            tool_calls=reader.tool_calls(),
            logprobs=reader.all_logprobs(gen.logprobs),
        )

    return await json_answer(request, answer())


async def stream_answer(request: Request, job: ChatJob, shape: Completion) -> Response:
    stack = contextlib.AsyncExitStack()
    queued: Generation | None = None
    if not job.chat.web_search:  # queue now: a full queue is a 503, not an error event
        queued = await stack.enter_async_context(job.generate(job.builder.plain()))
    usage_field = job.chat.include_usage

    async def chunks() -> AsyncGenerator[str, None]:
        async with stack:
            built = job.builder.plain()
            gen = queued
            if gen is None:
                built = await job.prompt()
                gen = await stack.enter_async_context(job.generate(built))
            first = shape.chunk(
                {"role": "assistant", "content": ""},
                with_usage_field=usage_field,
                sources=job.sources(built),
                search_query=job.search_query(),
            )
            yield sse_event(first)
            reader = job.reader()
            content = shape.content_events(with_usage_field=usage_field)
            async for piece in gen:
                for delta in reader.feed(piece):
                    logprobs = reader.new_logprobs(gen.logprobs) or None
                    if logprobs is None and delta.keys() == {"content"}:
                        yield content(delta["content"])  # the common chunk, built as text
                    else:
                        yield sse_event(shape.chunk(delta, with_usage_field=usage_field, logprobs=logprobs))
            for delta in reader.finish():
                yield sse_event(shape.chunk(delta, with_usage_field=usage_field))
            result = gen.result
            assert result is not None
            last = shape.chunk(
                {},
                result.reason,
                with_usage_field=usage_field,
                logprobs=reader.new_logprobs(gen.logprobs) or None,
                called=reader.called,
            )
            yield sse_event(last)
            if usage_field:
                yield sse_event(
                    shape.usage_chunk(result.prompt_tokens, result.completion_tokens, result.cached_tokens)
                )
            yield SSE_DONE

    def on_error(exc: Exception) -> str:
        _, body = stream_error(request, exc)
        return sse_event(body)

    return StreamedAnswer(
        chunks(),
        media_type=SSE_MEDIA_TYPE,
        heartbeat=job.runtime.settings.heartbeat,
        heartbeat_chunk=SSE_HEARTBEAT,
        on_error=on_error,
        cleanup=stack,
        send_timeout=job.runtime.settings.send_timeout,
    )
