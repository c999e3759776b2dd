"""The Gate middleware alone, around a tiny app: each of its rules, with exact headers and messages."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from server.api import gate as gate_module
from server.api.access import HostCheck, KeyCheck
from server.api.gate import Gate
from server.drain import Drain

KEY, ADMIN = "user-key", "admin-key"


def make(**options: object) -> tuple[TestClient, Drain, list[tuple[int, str]], list[dict[str, object]]]:
    """A Gate around an app that reports, for each request, the drain's count and the request id."""
    drain = Drain(30.0)
    refusals: list[tuple[int, str]] = []
    seen: list[dict[str, object]] = []

    async def endpoint(request: Request) -> JSONResponse:
        seen.append({"in_flight": drain.in_flight, "id": request.scope["state"]["request_id"]})
        return JSONResponse({"ok": True})

    paths = ["/x", "/metrics", "/health", "/livez", "/admin/drain", "/", "/static/a.js", "/staticx"]
    app = Starlette(routes=[Route(p, endpoint, methods=["GET", "POST"]) for p in paths])
    settings: dict[str, object] = dict(keys=KeyCheck(()), hosts=HostCheck(None), drain=drain)
    settings.update(options)
    gated = Gate(app, on_refusal=lambda status, code: refusals.append((status, code)), **settings)  # type: ignore[arg-type]
    return TestClient(gated, base_url="http://127.0.0.1"), drain, refusals, seen


def test_requests_are_counted_in_flight_except_probes_metrics_and_drain() -> None:
    client, drain, _, seen = make()
    for path in ("/x", "/metrics", "/health", "/livez", "/"):
        assert client.get(path).status_code == 200
    assert client.post("/admin/drain").status_code == 404  # no admin key: off
    assert [s["in_flight"] for s in seen] == [1, 0, 0, 0, 1]
    assert drain.in_flight == 0


def test_request_ids() -> None:
    client, _, _, seen = make()
    ok = "a" * 128
    assert client.get("/x", headers={"X-Request-Id": ok}).headers["x-request-id"] == ok
    assert seen[-1]["id"] == ok  # what the app and the log lines see
    for bad in ("a" * 129, "a b", "a;b", "a/b", ""):
        rid = client.get("/x", headers={"X-Request-Id": bad}).headers["x-request-id"]
        assert re.fullmatch("[0-9a-f]{32}", rid), bad
    assert client.get("/x", headers={"X-Request-Id": "A-z.0_9"}).headers["x-request-id"] == "A-z.0_9"


def test_keys_and_their_messages() -> None:
    client, _, refusals, _ = make(keys=KeyCheck([KEY]))
    r = client.get("/x")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {
        "detail": "an API key is needed: send it as 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'",
        "code": "invalid_api_key",
    }
    r = client.get("/x", headers={"X-Api-Key": "wrong"})
    assert r.json()["detail"].startswith("the API key is not valid: ")
    assert client.get("/x", headers={"X-Api-Key": KEY}).status_code == 200
    for open_path in ("/", "/static/a.js", "/health", "/livez"):
        assert client.get(open_path).status_code == 200, open_path
    assert client.get("/staticx").status_code == 401  # only the /static/ folder is open
    assert client.get("/metrics").status_code == 401
    assert refusals == [(401, "invalid_api_key")] * 4


def test_metrics_public_and_either_key_on_metrics() -> None:
    client, *_ = make(keys=KeyCheck([KEY]), metrics_public=True)
    assert client.get("/metrics").status_code == 200 and client.get("/x").status_code == 401
    client, *_ = make(keys=KeyCheck([KEY]), admin=KeyCheck([ADMIN]))
    assert client.get("/metrics", headers={"X-Api-Key": ADMIN}).status_code == 200
    assert client.get("/x", headers={"X-Api-Key": ADMIN}).status_code == 401


def test_admin_routes() -> None:
    client, _, refusals, _ = make(keys=KeyCheck([KEY]), admin=KeyCheck([ADMIN]))
    r = client.post("/admin/drain", headers={"X-Api-Key": KEY})
    assert (r.status_code, r.json()["code"]) == (403, "admin_key_required")
    r = client.post("/admin/drain")
    assert r.status_code == 401 and r.json()["detail"].startswith("an admin key is needed: ")
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post("/admin/drain", headers={"X-Api-Key": "wrong"})
    assert r.json()["detail"].startswith("the admin key is not valid: ")
    assert client.post("/admin/drain", headers={"X-Api-Key": ADMIN}).status_code == 200
    assert refusals == [(403, "admin_key_required"), (401, "invalid_api_key"), (401, "invalid_api_key")]
    client, _, refusals, _ = make()
    r = client.post("/admin/drain", headers={"X-Api-Key": ADMIN})
    assert r.status_code == 404 and r.json() == {
        "detail": "the admin routes are off: no --admin-key is set",
        "code": "admin_disabled",
    }
    assert refusals == [(404, "admin_disabled")]


def test_hosts() -> None:
    client, _, refusals, _ = make(hosts=HostCheck(("good.example",)))
    r = client.get("/x", headers={"host": "evil.example"})
    assert r.status_code == 400 and r.json() == {
        "detail": "this server does not answer for host 'evil.example'",
        "code": "host_not_allowed",
    }
    assert client.get("/x", headers={"host": "good.example"}).status_code == 200
    assert client.get("/health", headers={"host": "evil.example"}).status_code == 200  # probes pass
    assert refusals == [(400, "host_not_allowed")]


def test_cors_headers_exactly() -> None:
    client, *_ = make(cors_origins="https://app.example/, https://other.example")
    r = client.get("/x", headers={"origin": "HTTPS://App.Example/"})
    assert r.headers["access-control-allow-origin"] == "HTTPS://App.Example/"  # echoed as sent
    assert r.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert r.headers["access-control-allow-headers"] == "Authorization, Content-Type, X-Api-Key, X-Request-Id"
    assert r.headers["access-control-expose-headers"] == "X-Request-Id, Retry-After"
    assert r.headers["access-control-max-age"] == "600" and r.headers["vary"] == "Origin"
    assert (
        "access-control-allow-origin"
        not in client.get("/x", headers={"origin": "https://evil.example"}).headers
    )
    assert "access-control-allow-origin" not in client.get("/x").headers
    pre = {"origin": "https://evil.example", "access-control-request-method": "POST"}
    r = client.options("/x", headers=pre)
    assert r.status_code == 403 and r.json()["detail"] == "this origin may not call the server"
    assert client.options("/x", headers={**pre, "origin": "https://other.example"}).status_code == 204
    assert (
        client.options("/x", headers={"origin": "https://other.example"}).status_code == 405
    )  # not a preflight
    client, *_ = make(cors_origins="*")
    r = client.get("/x", headers={"origin": "https://any.example"})
    assert r.headers["access-control-allow-origin"] == "https://any.example"
    client, *_ = make()
    assert client.options("/x", headers=pre).status_code == 405  # CORS off: no preflight answers


def test_draining_refuses_new_work_but_not_probes_metrics_or_the_drain() -> None:
    client, drain, refusals, _ = make(admin=KeyCheck([ADMIN]))

    async def start() -> None:
        drain.start("test")
        assert drain._task is not None
        drain._task.cancel()  # no exit: the test only looks at the refusals

    asyncio.run(start())
    r = client.get("/x")
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.json() == {"detail": "the server is shutting down; retry on another replica", "code": "draining"}
    for path in ("/metrics", "/health", "/livez"):
        assert client.get(path).status_code == 200, path
    assert client.post("/admin/drain", headers={"X-Api-Key": ADMIN}).status_code == 200
    assert refusals == [(503, "draining")]


def test_the_access_log_line(caplog: pytest.LogCaptureFixture) -> None:
    client, *_ = make()
    with caplog.at_level(logging.INFO, logger=gate_module.__name__):
        client.get("/x")
        client.get("/health")
        client.get("/metrics")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and re.fullmatch(r"GET /x 200 \d+\.\d{3}s", lines[0]), lines
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=gate_module.__name__):
        client.get("/health")
    assert [(r.levelname, r.getMessage()[:16]) for r in caplog.records] == [("DEBUG", "GET /health 200 ")]


def test_other_scopes_pass_through() -> None:
    calls: list[str] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        calls.append(scope["type"])

    gated = Gate(app, keys=KeyCheck([KEY]), hosts=HostCheck(("x",)), drain=Drain(1.0))
    asyncio.run(gated({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert calls == ["lifespan"]
