"""Operations routes: GET /livez, GET /metrics, POST /admin/drain.

`/livez` is the liveness probe, `{"status", "reason"}` as `/health` says them: 200 `ok`
(`alive`) while the engine thread's loop beats (it does, idle or not, at least every second;
one decode step may hold it up to `LIVENESS_SECONDS`), `loading` (`model_loading`) while the
model loads, `draining` (`draining`) while it drains; 503 `failed` when the loop has stopped or
hangs (`engine_stalled`) or the model failed to load (the startup error's code). A restart is
the cure for a 503 here; `/health` (readiness) says whether to send traffic.

`POST /admin/drain` is reached only with the admin key (the gate sees to it).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..drain import Drain
from ..metrics import CONTENT_TYPE, Metrics
from .common import runtime_of
from .health import state_of

LIVENESS_SECONDS = 120.0

# for /openapi.json (POST /admin/drain is left out on purpose: not an API, and a fuzzer would drain)
OPS_PATHS = {
    "/livez": {
        "get": {
            "summary": "Liveness: 200 while the engine loop beats, the model loads or the server drains; "
            "503 when the loop stalled or loading failed",
            "responses": {
                "200": {
                    "description": "alive",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "503": {"description": "the engine loop stopped beating, or the model failed to load"},
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (ozfig_*); needs an API key or the admin key when API keys are "
            "set, unless --metrics-public",
            "responses": {
                "200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {}}}
            },
        }
    },
}


async def livez(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    state = state_of(runtime, request.app.state.drain)
    if state.status == "failed":
        return JSONResponse({"status": "failed", "reason": state.reason}, status_code=503)
    engine = runtime.engine
    if engine is None:
        return JSONResponse({"status": state.status, "reason": state.reason})
    age = round(engine.heartbeat_age(), 3)
    if age >= LIVENESS_SECONDS:
        body = {"status": "failed", "reason": "engine_stalled", "engine_heartbeat_age": age}
        return JSONResponse(body, status_code=503)
    reason = "alive" if state.status == "ok" else state.reason
    return JSONResponse({"status": state.status, "reason": reason, "engine_heartbeat_age": age})


async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)


async def drain(request: Request) -> JSONResponse:
    """Start draining (the gate let only the admin key through)."""
    state: Drain = request.app.state.drain
    started = state.start("POST /admin/drain")
    return JSONResponse(
        {"status": "draining", "started": started, "running": state.in_flight, "timeout": state.timeout},
        status_code=202,
    )
