"""The application factory: `create_app(settings)` builds the ASGI app and its runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

from .api import completions, health, openai, page, prompt_route, query_path  # noqa: F401  (query_path: the {query:text} convertor)
from .api.http_errors import EXCEPTION_HANDLERS
from .api.openapi import openapi
from .api.ops import Operations
from .runtime import Runtime
from .settings import Settings


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    runtime = runtime or Runtime.from_settings(settings)
    ops = Operations.from_settings(settings, runtime)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.close()

    routes = [
        Route("/", page.root, methods=["GET"]),
        Route("/static/{name:path}", page.static, methods=["GET"]),
        Route("/health", health.health, methods=["GET"]),
        Route("/prompt/{query:text}", prompt_route.prompt, methods=["GET"]),
        Route("/v1/chat/completions", openai.chat_completions, methods=["POST"]),
        Route("/v1/completions", completions.completions, methods=["POST"]),
        Route("/v1/models", openai.models, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *ops.routes,
    ]
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
        middleware=[ops.middleware],
    )
    app.state.runtime = runtime
    ops.attach(app, runtime)
    return app
