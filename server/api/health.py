"""GET /health: 503 while the model loads (or failed to), 200 with what is served once ready."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from .common import runtime_of


async def health(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    failure = runtime.error.message if runtime.error is not None else None
    if failure is None and runtime.engine is not None and runtime.engine.failure is not None:
        failure = f"the engine failed: {runtime.engine.failure}"
    if failure is not None:
        return JSONResponse({"status": "failed", "error": failure}, status_code=503)
    if runtime.engine is None or runtime.model is None:
        return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "5"})
    model, engine = runtime.model, runtime.engine
    stats = engine.stats
    return JSONResponse(
        {
            "status": "ok",
            "model": model.name,
            "ctx": runtime.settings.ctx,
            "gpu": model.gpu_layers > 0,
            "gpu_layers": model.gpu_layers,
            "slots": stats.slots,
            "busy_slots": stats.busy_slots,
            "queue_depth": stats.queue_depth,
        }
    )
