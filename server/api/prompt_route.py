"""GET /prompt/{query}: the original OzFig endpoint, with web snippets and sources.

Three forms of the same answer:
- JSON (the default, the original's): `{"message", "sources", "usage"}` once it is complete;
- Server-Sent Events (`?stream=true`, or `Accept: text/event-stream`): `token` events
  `{"text"}` as pieces arrive, then one `done` event `{"message", "sources", "usage",
  "finish_reason"}`; an `error` event `{"detail", "code"}` if it fails midway;
- plain text (`?stream=text`, for `curl -N`): the answer as it arrives, then its sources.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from ozfig.engine.jobs import Finished, Job
from ozfig.engine.sampling import SamplingParams
from ozfig.errors import InvalidFieldError

from ..prompt_build import BuiltPrompt, ozfig_prompt
from ..runtime import Runtime
from .common import (
    check_capacity,
    check_query,
    check_same_site,
    json_answer,
    runtime_of,
)
from .http_errors import stream_error
from .sse import SSE_HEARTBEAT, SSE_MEDIA_TYPE, StreamedAnswer, sse_event

Form = Literal["json", "sse", "text"]
_STREAM_VALUES: dict[str, Form] = {
    "": "json",
    "0": "json",
    "false": "json",
    "no": "json",
    "1": "sse",
    "true": "sse",
    "yes": "sse",
    "sse": "sse",
    "text": "text",
}


def answer_form(request: Request) -> Form:
    raw = request.query_params.get("stream")
    if raw is not None:
        form = _STREAM_VALUES.get(raw.strip().lower())
        if form is None:
            raise InvalidFieldError("stream", f"stream must be true, false or text, got {raw!r}")
        return form
    return "sse" if SSE_MEDIA_TYPE in request.headers.get("accept", "") else "json"


def usage_of(result: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cached_tokens": result.cached_tokens,
    }


class PromptJob:
    """One /prompt answer: check, search, build the OzFig prompt (rendered once), generate."""

    def __init__(self, runtime: Runtime, query: str) -> None:
        self.runtime = runtime
        self.query = query
        self.engine, self.formatter = runtime.require_engine()
        s = runtime.settings
        self.builder = ozfig_prompt(
            self.formatter, query, ctx=s.ctx, max_tokens=s.max_tokens, web_tokens=runtime.web_tokens
        )

    async def check(self) -> None:
        """Before the search: a query that cannot fit is a 400, a full queue a 503."""
        await asyncio.to_thread(self.builder.plain)  # web text can be long: keep the event loop free
        check_capacity(self.engine)

    def job(self, built: BuiltPrompt) -> Job:
        return Job(built.tokens, built.max_tokens, SamplingParams(temperature=self.runtime.settings.temperature))

    async def prompt(self) -> BuiltPrompt:
        passages = await self.runtime.web_passages(self.query)
        return await asyncio.to_thread(self.builder.with_passages, passages)


async def prompt(request: Request) -> Response:
    check_same_site(request)
    runtime = runtime_of(request)
    query = check_query(request.path_params["query"], runtime.settings.max_query_chars)
    form = answer_form(request)
    job = PromptJob(runtime, query)
    await job.check()
    if form != "json":
        return streamed(request, job, form)

    async def answer() -> dict[str, object]:
        built = await job.prompt()
        async with job.engine.generate(job.job(built)) as gen:
            message = await gen.text()
        assert gen.result is not None
        return {
            "message": message.strip(),
            "sources": [s.as_json() for s in built.sources],
            "usage": usage_of(gen.result),
        }

    return await json_answer(request, answer())


def streamed(request: Request, job: PromptJob, form: Form) -> Response:
    sse = form == "sse"

    async def chunks() -> AsyncGenerator[str, None]:
        built = await job.prompt()
        sources = [s.as_json() for s in built.sources]
        parts: list[str] = []
        async with job.engine.generate(job.job(built)) as gen:
            async for piece in gen:
                if not parts:
                    piece = piece.lstrip()  # as the JSON form's message, which is stripped
                if piece:
                    parts.append(piece)
                    yield sse_event({"text": piece}, "token") if sse else piece
        result = gen.result
        assert result is not None
        if not sse:
            yield "\n\n" + "".join(f"[{s['n']}] {s['title']} {s['url']}\n" for s in sources)
            return
        done = {
            "message": "".join(parts).strip(),
            "sources": sources,
            "usage": usage_of(result),
            "finish_reason": result.reason,
        }
        yield sse_event(done, "done")

    def on_error(exc: Exception) -> str:
        _, body = stream_error(request, exc)
        return sse_event(body, "error") if sse else f"\n[error: {body['detail']}]\n"

    return StreamedAnswer(
        chunks(),
        media_type=SSE_MEDIA_TYPE if sse else "text/plain",
        heartbeat=job.runtime.settings.heartbeat,
        heartbeat_chunk=SSE_HEARTBEAT if sse else None,
        on_error=on_error,
        send_timeout=job.runtime.settings.send_timeout,
    )
