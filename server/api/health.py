"""GET /health (readiness): the server's state as `loading|ok|draining|failed` and a stable reason.

Every answer is `{"status", "reason"}`; `ok` (200) adds what is served (model file name, context,
slots, the decoding threads and where their number came from). `loading`, `draining` and
`failed` answer 503. The reason is a code, never a message: a failure's details (file paths,
a library's error text) are in the log, and in `/health` only for a request with the admin key
(as `detail`). Probes pass the gate without a key, so anyone who reaches the port reads this.

Reasons: `ready`; `model_loading`; `draining`; for `failed`, the startup error's code
(`model_not_found`, `model_not_gguf`, `model_fetch_failed`, `model_load_failed`,
`chat_template_unusable`, `startup_failed`) or `engine_stopped`.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..drain import Drain
from ..runtime import Runtime
from .access import KeyCheck
from .common import runtime_of

RETRY_SECONDS = "5"


@dataclass(frozen=True)
class State:
    status: str  # loading, ok, draining, failed
    reason: str  # a stable code
    detail: str | None = None  # for the log and the admin key only


def state_of(runtime: Runtime, drain: Drain) -> State:
    if runtime.error is not None:
        return State("failed", runtime.error.code, runtime.error.message)
    engine = runtime.engine
    if engine is not None and engine.failure is not None:
        return State("failed", "engine_stopped", f"the engine failed: {engine.failure}")
    if drain.draining:
        return State("draining", "draining")
    if engine is None or runtime.model is None:
        return State("loading", "model_loading")
    return State("ok", "ready")


def is_admin(request: Request) -> bool:
    admin: KeyCheck = request.app.state.admin_keys
    return admin.enabled and admin.accepts(request.headers)


async def health(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    state = state_of(runtime, request.app.state.drain)
    body: dict[str, object] = {"status": state.status, "reason": state.reason}
    if state.detail is not None and is_admin(request):
        body["detail"] = state.detail
    if state.status == "failed":
        return JSONResponse(body, status_code=503)
    if state.status != "ok":
        return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_SECONDS})
    model, engine, threads = runtime.model, runtime.engine, runtime.threads
    assert model is not None and engine is not None and threads is not None
    stats = engine.stats
    body.update(
        {
            "model": model.name,
            "ctx": runtime.settings.ctx,
            "gpu": model.gpu_layers > 0,
            "gpu_layers": model.gpu_layers,
            "slots": stats.slots,
            "busy_slots": stats.busy_slots,
            "queue_depth": stats.queue_depth,
            "threads": threads.count,
            "threads_from": threads.source,
        }
    )
    return JSONResponse(body)
