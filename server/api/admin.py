"""Operations routes: GET /livez, GET /metrics, POST /admin/drain.

`/livez` is the liveness probe: 200 while the engine thread's loop beats (it does, idle or
not, at least every second; one decode step may hold it up to `LIVENESS_SECONDS`), or while
the model is still loading; 503 when the loop has stopped or hangs. A restart is the cure
for a 503 here; `/health` (readiness) says whether to send traffic.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ozfig.errors import ForbiddenError

from ..drain import Drain
from ..metrics import CONTENT_TYPE, Metrics
from .access import is_loopback
from .common import runtime_of

LIVENESS_SECONDS = 120.0

# for /openapi.json (POST /admin/drain is left out on purpose: not an API, and a fuzzer would drain)
OPS_PATHS = {
    "/livez": {
        "get": {
            "summary": "Liveness: 200 while the engine loop beats or the model loads; 503 when it stalled",
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
            "summary": "Prometheus metrics (ozfig_*); needs the API key when keys are set, unless --metrics-public",
            "responses": {
                "200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {}}}
            },
        }
    },
}


async def livez(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    engine = runtime.engine
    if engine is None:
        status = "failed" if runtime.error is not None else "loading"
        return JSONResponse({"status": status}, status_code=503 if runtime.error is not None else 200)
    age = engine.heartbeat_age()
    body = {"status": "ok" if age < LIVENESS_SECONDS else "stalled", "engine_heartbeat_age": round(age, 3)}
    return JSONResponse(body, status_code=200 if age < LIVENESS_SECONDS else 503)


async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)


async def drain(request: Request) -> JSONResponse:
    """Start draining. The key is checked by the gate when keys are set; without keys, loopback only."""
    state: Drain = request.app.state.drain
    keys = request.app.state.keys
    client = request.client.host if request.client else ""
    if not keys.enabled and not is_loopback(client):
        raise ForbiddenError("without --api-key, POST /admin/drain is accepted from this machine only")
    started = state.start("POST /admin/drain")
    return JSONResponse(
        {"status": "draining", "started": started, "running": state.in_flight, "timeout": state.timeout},
        status_code=202,
    )
