"""`ozfig serve`: start the HTTP server."""

from __future__ import annotations

import argparse
import logging
import sys

from ozfig.errors import OzfigError
from ozfig.options import add_options, from_sources

from .settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "serve",
        help="serve the model over HTTP (chat page, /prompt/<query>, OpenAI-compatible /v1, /health)",
        description=(
            "Serve a GGUF chat model over HTTP. The port is bound at once; /health answers 503 until the "
            "model is loaded. Every flag can also be set with the OZFIG_* environment variable shown."
        ),
    )
    add_options(parser, Settings)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # what can be refused at once is refused before the slow imports (the app, aiohttp, uvicorn)
    settings = from_sources(Settings, args)
    from ozfig.llama.model import check_gguf_file

    from .logs import configure as configure_logging
    from .model_source import check_local_model, parse_hub_reference

    configure_logging(settings.log_level, settings.log_format)
    for model in (settings.model, settings.draft_model):
        if model and parse_hub_reference(model) is None:
            check_local_model(model)  # fail at once, before binding the port
            check_gguf_file(model)

    import uvicorn

    from .app import create_app
    from .runtime import Runtime
    from .serving import DrainingServer, json_refusals

    runtime = Runtime.from_settings(settings)
    app = create_app(settings, runtime)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # the gate logs each request, with its id
        log_config=None,  # uvicorn's loggers go through ozfig's handler (text or JSON)
        timeout_graceful_shutdown=5,
        limit_concurrency=settings.max_connections,
    )
    server = DrainingServer(config, app.state.drain)
    json_refusals(app.state.metrics.observe_error)
    failure: list[OzfigError] = []

    def on_fatal(exc: OzfigError) -> None:
        failure.append(exc)
        server.should_exit = True

    runtime.on_fatal = on_fatal
    server.run()
    if failure:
        print(f"ozfig: error: {failure[0].message}", file=sys.stderr)
        return 1
    return 0
