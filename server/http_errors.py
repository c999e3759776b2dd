"""The one place where exceptions become HTTP answers.

ozfig's own errors carry their status and reason. Paths under /v1/ answer in OpenAI's
error shape; the rest answer `{"detail": ..., "code": ...}` as the original app did.
Anything unexpected is logged with its traceback and answered 500 with a short reason.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import OzfigError, ServiceUnavailableError

log = logging.getLogger("ozfig.http")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "invalid_request"}


def error_body(path: str, status: int, message: str, code: str, kind: str) -> dict[str, object]:
    if path.startswith("/v1/") or path == "/v1":
        return {"error": {"message": message, "type": kind, "code": code, "param": None}}
    return {"detail": message, "code": code}


def error_response(
    request: Request, status: int, message: str, code: str, kind: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        error_body(request.url.path, status, message, code, kind), status_code=status, headers=headers
    )


async def ozfig_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OzfigError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, ServiceUnavailableError) else None
    return error_response(request, exc.status, exc.message, exc.code, exc.kind, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    message = exc.detail if exc.status_code != 404 else f"no route for {request.method} {request.url.path}"
    return error_response(request, exc.status_code, message, code, kind, dict(exc.headers or {}))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        request, 500, "internal error; see the server log", "internal_error", "server_error"
    )


EXCEPTION_HANDLERS = {OzfigError: ozfig_error, HTTPException: http_error, Exception: unexpected_error}
