"""POST /v1/chat/completions and GET /v1/models, as OpenAI's clients expect them.

Everything that can be checked before an answer starts is checked first, so that a bad
field, a prompt that cannot fit, a loading model or a full queue get their own status
(400, 503) even on a streamed request. Without web search the generation is queued
before the 200 is sent; with it, the search runs inside the stream under heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ozfig.engine.engine import Generation
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams

from ..chat_build import chat_prompt, last_user
from ..prompt_build import BuiltPrompt
from ..runtime import Runtime
from ..search_query import search_query
from ..settings import Settings
from .chat_request import ChatRequest, parse_chat_request
from .common import (
    check_capacity,
    check_input_chars,
    json_answer,
    read_json_body,
    runtime_of,
)
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


def sampling_of(chat: ChatRequest, settings: Settings) -> SamplingParams:
    defaults = SamplingParams()
    return SamplingParams(
        temperature=settings.temperature if chat.temperature is None else chat.temperature,
        top_p=defaults.top_p if chat.top_p is None else chat.top_p,
        frequency_penalty=chat.frequency_penalty or 0.0,
        presence_penalty=chat.presence_penalty or 0.0,
        seed=chat.seed,
        stop=chat.stop,
    )


class ChatJob:
    """One chat completion: its prompt (after the web search, when asked for) and generation.

    The prompt is rendered once for what it finally holds (`PromptBuilder`), in a worker
    thread: a large conversation must not stall the event loop, which serves every other client.
    """

    def __init__(self, runtime: Runtime, chat: ChatRequest) -> None:
        self.runtime = runtime
        self.chat = chat
        settings = runtime.settings
        check_input_chars(chat.input_chars, settings.max_input_chars)
        self.engine, self.formatter = runtime.require_engine()
        self.sampling = sampling_of(chat, settings)
        self.builder = chat_prompt(
            self.formatter,
            chat.messages,
            web=chat.web_search,
            ctx=settings.ctx,
            max_tokens=min(chat.max_tokens or settings.max_tokens, settings.max_tokens),
            web_tokens=runtime.web_tokens,
            memory=runtime.source_memory,
        )
        self.query = ""

    async def check(self) -> None:
        """Before any answer starts: the conversation must fit without sources, and the queue have room."""
        await asyncio.to_thread(self.builder.plain)
        check_capacity(self.engine)

    async def prompt(self) -> BuiltPrompt:
        if not self.chat.web_search:
            return self.builder.plain()
        settings = self.runtime.settings
        messages = self.chat.messages
        self.query = search_query(messages, settings.max_query_chars, rewrite=settings.search_rewrite)
        log.info("web search for %r", self.query)
        passages = await self.runtime.web_passages(self.query)
        built = await asyncio.to_thread(self.builder.with_passages, passages)
        self.runtime.source_memory.remember(messages[: last_user(messages) + 1], built.sources)
        return built

    def generate(self, built: BuiltPrompt) -> contextlib.AbstractAsyncContextManager[Generation]:
        return self.engine.generate(Job(built.tokens, built.max_tokens, self.sampling))

    def sources(self, built: BuiltPrompt) -> list[dict[str, object]] | None:
        return [s.as_json() for s in built.sources] if self.chat.web_search else None

    def search_query(self) -> str | None:
        """The query the web was asked (after a follow-up's rewrite), with web search on."""
        return self.query if self.chat.web_search else None


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
        async with job.generate(built) as gen:
            content = await gen.text()
        assert gen.result is not None
        result = gen.result
        return shape.completion(
            content,
            result.reason,
            result.prompt_tokens,
            result.completion_tokens,
            job.sources(built),
            result.cached_tokens,
            job.search_query(),
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
            content = shape.content_events(with_usage_field=usage_field)
            async for piece in gen:
                if piece:
                    yield content(piece)
            result = gen.result
            assert result is not None
            yield sse_event(shape.chunk({}, result.reason, with_usage_field=usage_field))
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
