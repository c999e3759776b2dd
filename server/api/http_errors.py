"""The one place where exceptions become HTTP answers.

ozfig's own errors carry their status and reason. Paths under /v1/ answer in OpenAI's
error shape `{"error": {"message", "type", "param", "code"}}`; the rest answer
`{"detail": ..., "code": ...}` as the original app did. Anything unexpected is logged with
its traceback and answered 500 with a short reason.

A streamed answer has already sent its 200 when an error happens; `stream_error` gives
the same body for the stream to send as its last event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ozfig.errors import InvalidFieldError, OzfigError, ServiceUnavailableError

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "invalid_request"}


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    message: str
    code: str
    kind: str
    param: str | None = None
    headers: dict[str, str] | None = None


def is_openai_path(path: str) -> bool:
    return path.startswith("/v1/") or path == "/v1"


def error_body(path: str, answer: ErrorAnswer) -> dict[str, object]:
    if is_openai_path(path):
        return {
            "error": {
                "message": answer.message,
                "type": answer.kind,
                "param": answer.param,
                "code": answer.code,
            }
        }
    return {"detail": answer.message, "code": answer.code}


def answer_for_ozfig_error(exc: OzfigError) -> ErrorAnswer:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, ServiceUnavailableError) else None
    param = exc.param if isinstance(exc, InvalidFieldError) else None
    return ErrorAnswer(exc.status, exc.message, exc.code, exc.kind, param, headers)


def unexpected_answer(request_line: str, exc: BaseException) -> ErrorAnswer:
    log.error("unexpected error on %s", request_line, exc_info=exc)
    return ErrorAnswer(500, "internal error; see the server log", "internal_error", "server_error")


def observe(request: Request, answer: ErrorAnswer) -> None:
    """Count the error answer in /metrics."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.observe_error(answer.status, answer.code)


def error_response(request: Request, answer: ErrorAnswer) -> Response:
    observe(request, answer)
    return JSONResponse(
        error_body(request.url.path, answer), status_code=answer.status, headers=answer.headers
    )


def stream_error(request: Request, exc: Exception) -> tuple[int, dict[str, object]]:
    """(status, body) for an error raised after a streamed answer has begun."""
    if isinstance(exc, OzfigError):
        answer = answer_for_ozfig_error(exc)
        log.warning("streamed answer to %s ended with %s: %s", request.url.path, answer.code, answer.message)
    else:
        answer = unexpected_answer(f"{request.method} {request.url.path} (streaming)", exc)
    observe(request, answer)
    return answer.status, error_body(request.url.path, answer)


async def ozfig_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OzfigError)
    return error_response(request, answer_for_ozfig_error(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    message = exc.detail if exc.status_code != 404 else f"no route for {request.method} {request.url.path}"
    headers = dict(exc.headers or {}) or None
    return error_response(request, ErrorAnswer(exc.status_code, message, code, kind, None, headers))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    return error_response(request, unexpected_answer(f"{request.method} {request.url.path}", exc))


EXCEPTION_HANDLERS = {OzfigError: ozfig_error, HTTPException: http_error, Exception: unexpected_error}
