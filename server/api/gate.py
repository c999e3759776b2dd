"""The one ASGI middleware every HTTP request passes: request id, Host, CORS, keys, drain.

In order, for each request:
1. its id: the client's `X-Request-Id` when it is 1 to 128 characters of `[A-Za-z0-9._-]`,
   else a new one; it is sent back on every response and shown on every log line of the request;
2. the probes `/health` and `/livez` pass (they answer for themselves, draining included);
3. the Host header against `--allowed-hosts` (400 `host_not_allowed`);
4. CORS, when `--cors-origins` is set: preflights answered here, allowed origins echoed;
5. `/admin/` routes take the admin key only: none configured, they are off (404
   `admin_disabled`); an API key gets 403 `admin_key_required`, no key or a wrong one 401;
6. the API key, when keys are set, except on `/` and `/static/` (the chat page), the probes and a
   public `/metrics` (401); `/metrics` takes the admin key too;
7. while draining (after `--drain-grace`), a 503 `draining` with `Retry-After` for anything new;
8. requests that pass are counted in flight (the drain waits for them) and logged when done.
Every refusal is JSON in the documented error shape (`http_errors.error_body`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ozfig.errors import (
    AdminDisabledError,
    AdminKeyRequiredError,
    DrainingError,
    HostNotAllowedError,
    OriginNotAllowedError,
    OzfigError,
    UnauthorizedError,
)

from ..drain import Drain
from ..logs import request_id
from .access import HostCheck, KeyCheck, split_list
from .http_errors import answer_for_ozfig_error, error_body

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
PROBES = frozenset({"/health", "/livez"})
ADMIN_PREFIX = "/admin/"
NOT_IN_FLIGHT = PROBES | {"/metrics", "/admin/drain"}
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Api-Key, X-Request-Id"
CORS_MAX_AGE = "600"


def request_id_of(headers: Headers) -> str:
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyCheck,
        hosts: HostCheck,
        drain: Drain,
        cors_origins: str = "",
        metrics_public: bool = False,
        on_refusal: Callable[[int, str], None] = lambda status, code: None,
        admin: KeyCheck | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.admin = admin or KeyCheck(())
        self.hosts = hosts
        self.drain = drain
        origins = split_list(cors_origins)
        self.cors_any = "*" in origins
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in origins if o != "*")
        self.open_paths = {"/", *PROBES} | ({"/metrics"} if metrics_public else set())
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = request_id_of(headers)
        token = request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        origin = self.allowed_origin(headers.get("origin"))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = MutableHeaders(scope=message)
                out["X-Request-Id"] = rid
                if origin is not None:
                    self.add_cors(out, origin)
            await send(message)

        path: str = scope["path"]
        started = time.perf_counter()
        try:
            refusal = self.refusal(scope, headers, origin)
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
                return
            counted = path not in NOT_IN_FLIGHT
            if counted:
                self.drain.enter()
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if counted:
                    self.drain.leave()
        finally:
            level = logging.DEBUG if path in NOT_IN_FLIGHT else logging.INFO  # probes: often, and quiet
            log.log(level, "%s %s %d %.3fs", scope["method"], path, status, time.perf_counter() - started)
            request_id.reset(token)

    # --- decisions ---------------------------------------------------------------------------

    def refusal(self, scope: Scope, headers: Headers, origin: str | None) -> Response | None:
        path: str = scope["path"]
        if path in PROBES:
            return None
        if not self.hosts.accepts(headers.get("host")):
            return self.refuse(
                path, HostNotAllowedError(f"this server does not answer for host {headers.get('host')!r}")
            )
        if self.cors_enabled and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            if origin is None:
                return self.refuse(path, OriginNotAllowedError("this origin may not call the server"))
            return Response(status_code=204)
        if path.startswith(ADMIN_PREFIX):
            return self.admin_refusal(path, headers)
        if self.keys.enabled and not self.is_open(path) and not self.key_accepted(path, headers):
            return self.unauthorized(path, headers, "API key")
        if self.drain.refusing and path not in NOT_IN_FLIGHT:
            return self.refuse(
                path, DrainingError("the server is shutting down; retry on another replica", retry_after=2)
            )
        return None

    def admin_refusal(self, path: str, headers: Headers) -> Response | None:
        """`/admin/` routes: the admin key passes; off without one; an API key is not enough."""
        if not self.admin.enabled:
            return self.refuse(path, AdminDisabledError("the admin routes are off: no --admin-key is set"))
        if self.admin.accepts(headers):
            return None
        if self.keys.enabled and self.keys.accepts(headers):
            return self.refuse(path, AdminKeyRequiredError("this route takes the admin key, not an API key"))
        return self.unauthorized(path, headers, "admin key")

    def key_accepted(self, path: str, headers: Headers) -> bool:
        """An API key; on /metrics, the admin key too."""
        return self.keys.accepts(headers) or (path == "/metrics" and self.admin.accepts(headers))

    def unauthorized(self, path: str, headers: Headers, what: str) -> Response:
        given = KeyCheck.presented(headers) is not None
        reason = f"the {what} is not valid" if given else f"an {what} is needed"
        return self.refuse(
            path,
            UnauthorizedError(f"{reason}: send it as 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'"),
            {"WWW-Authenticate": "Bearer"},
        )

    def is_open(self, path: str) -> bool:
        """Paths served without a key: the chat page and its static files, the probes."""
        return path in self.open_paths or path.startswith("/static/")

    def refuse(self, path: str, exc: OzfigError, extra: dict[str, str] | None = None) -> Response:
        answer = answer_for_ozfig_error(exc)
        self.on_refusal(answer.status, answer.code)
        headers = {**(answer.headers or {}), **(extra or {})}
        return JSONResponse(error_body(path, answer), status_code=answer.status, headers=headers or None)

    # --- CORS ----------------------------------------------------------------------------------

    @property
    def cors_enabled(self) -> bool:
        return self.cors_any or bool(self.cors_origins)

    def allowed_origin(self, origin: str | None) -> str | None:
        if not origin or not self.cors_enabled:
            return None
        if self.cors_any or origin.rstrip("/").lower() in self.cors_origins:
            return origin
        return None

    def add_cors(self, headers: MutableHeaders, origin: str) -> None:
        headers["Access-Control-Allow-Origin"] = origin
        headers.add_vary_header("Origin")
        headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"
        headers["Access-Control-Max-Age"] = CORS_MAX_AGE
