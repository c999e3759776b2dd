"""GET /prompt/{query}: the original OzFig endpoint, with web snippets and sources."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.engine import GenerationRequest
from ..engine.sampling import SamplingParams
from ..prompt import build_ozfig_prompt
from .common import ClientGone, check_query, runtime_of, unless_disconnected

HINT = {"message": "Use /prompt/{query} to talk with the OzFig"}


async def root(request: Request) -> Response:
    return JSONResponse(HINT)


async def prompt(request: Request) -> Response:
    runtime = runtime_of(request)
    settings = runtime.settings
    query = check_query(request.path_params["query"], settings.max_query_chars)
    engine, formatter = runtime.require_engine()

    async def answer() -> dict[str, object]:
        snippets = await runtime.search.snippets(query)
        built = build_ozfig_prompt(
            formatter, query, snippets, ctx=settings.ctx, max_tokens=settings.max_tokens
        )
        sampling = SamplingParams(temperature=settings.temperature)
        async with engine.generate(GenerationRequest(built.tokens, settings.max_tokens, sampling)) as gen:
            message = await gen.text()
        assert gen.result is not None
        return {
            "message": message.strip(),
            "sources": [s.as_json() for s in built.sources],
            "usage": {
                "prompt_tokens": gen.result.prompt_tokens,
                "completion_tokens": gen.result.completion_tokens,
            },
        }

    try:
        return JSONResponse(await unless_disconnected(request, answer()))
    except ClientGone:
        return Response(status_code=499)
