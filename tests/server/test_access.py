"""API keys, the Host check, CORS, request ids and JSON refusals, through the real app.

No model is needed: the gate answers before any route does (the model path does not exist,
so model routes answer 503 `model_loading`/failed, which is enough to tell "let through").
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import time

import pytest
import uvicorn
from starlette.testclient import TestClient

from ozfig.options import add_options, from_sources
from server.api import gate
from server.api.access import HostCheck, KeyCheck, startup_warnings
from server.app import create_app
from server.logs import JsonFormatter, RequestIdFilter, request_id
from server.serving import json_refusals
from server.settings import Settings
from tests.support.processes import free_port, get_json

KEY = "sk-test-0123456789"
ADMIN = "admin-test-9876543210"


def app_client(base_url: str = "http://127.0.0.1", **overrides: object) -> TestClient:
    settings = Settings(model="/nonexistent/model.gguf", **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings), base_url=base_url)


@pytest.fixture()
def keyed() -> TestClient:
    with app_client(api_key=(KEY,)) as c:
        yield c


def test_without_a_key_protected_routes_answer_401_in_each_documented_shape(keyed) -> None:
    r = keyed.get("/v1/models")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    error = r.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert error["param"] is None and "API key" in error["message"]
    r = keyed.get("/prompt/hello")
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key" and "detail" in r.json()
    assert keyed.post("/v1/chat/completions", json={}).status_code == 401
    assert keyed.get("/metrics").status_code == 401


def test_open_routes_need_no_key(keyed) -> None:
    assert keyed.get("/health").status_code in (200, 503)
    assert keyed.get("/livez").status_code in (200, 503)
    assert keyed.get("/", headers={"accept": "text/html"}).status_code == 200
    assert keyed.get("/static/chat.js").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY}"}, {"X-Api-Key": KEY}],
)
def test_a_right_key_passes(keyed, headers) -> None:
    r = keyed.get("/v1/models", headers=headers)
    assert r.status_code != 401  # through the gate: the (missing) model answers
    assert keyed.get("/metrics", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer sk-test-012345678"},
        {"Authorization": KEY},
        {"X-Api-Key": KEY + "x"},
        {"Authorization": "Basic " + KEY},
    ],
)
def test_a_wrong_key_is_refused(keyed, headers) -> None:
    r = keyed.get("/v1/models", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "invalid_api_key"
    # a key sent the way clients send keys is "not valid"; one sent otherwise is no key at all
    presented = "X-Api-Key" in headers or headers["Authorization"].startswith("Bearer ")
    expected = "the API key is not valid" if presented else "an API key is needed"
    assert r.json()["error"]["message"].startswith(expected)


def test_admin_routes_take_the_admin_key_only() -> None:
    with app_client(api_key=(KEY,), admin_key=(ADMIN,)) as c:
        r = c.post("/admin/drain", headers={"X-Api-Key": KEY})  # a user's key
        assert r.status_code == 403 and r.json() == {
            "detail": "this route takes the admin key, not an API key",
            "code": "admin_key_required",
        }
        r = c.post("/admin/drain")
        assert r.status_code == 401 and r.json()["detail"].startswith("an admin key is needed")
        r = c.post("/admin/drain", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["detail"].startswith("the admin key is not valid")
        assert c.get("/health").json()["status"] != "draining"  # none of them drained
        r = c.post("/admin/drain", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 202 and r.json()["status"] == "draining" and r.json()["started"] is True
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["status"] in ("draining", "failed")
        assert c.get("/livez").json()["status"] in ("draining", "failed")
        assert c.get("/v1/models", headers={"X-Api-Key": ADMIN}).status_code == 401  # not an API key


def test_the_admin_key_alone_with_no_api_keys() -> None:
    with app_client(admin_key=(ADMIN,)) as c:
        assert c.post("/admin/drain", headers={"X-Api-Key": KEY}).status_code == 401
        assert c.post("/admin/drain", headers={"X-Api-Key": ADMIN}).status_code == 202


def test_without_an_admin_key_the_admin_routes_are_off() -> None:
    for settings in ({}, {"api_key": (KEY,)}):
        with app_client(**settings) as c:  # type: ignore[arg-type]
            for headers in ({}, {"X-Api-Key": KEY}):
                r = c.post("/admin/drain", headers=headers)
                assert r.status_code == 404 and r.json()["code"] == "admin_disabled", settings
            assert c.get("/health").json()["status"] != "draining"


def test_metrics_take_either_key() -> None:
    with app_client(api_key=(KEY,), admin_key=(ADMIN,)) as c:
        assert c.get("/metrics", headers={"X-Api-Key": KEY}).status_code == 200
        assert c.get("/metrics", headers={"X-Api-Key": ADMIN}).status_code == 200
        assert c.get("/metrics", headers={"X-Api-Key": "other"}).status_code == 401
        assert c.get("/metrics").status_code == 401


def test_admin_keys_from_flag_environment_and_file(tmp_path) -> None:
    key_file = tmp_path / "admin"
    key_file.write_text("# ops\nfile-admin  # on call\n")
    settings = from_sources(
        Settings, None, environ={"OZFIG_ADMIN_KEY": "env-admin", "OZFIG_ADMIN_KEY_FILE": str(key_file)}
    )
    admin = KeyCheck.admin_from_settings(settings, KeyCheck.from_settings(settings))
    assert admin.accepts({"x-api-key": "env-admin"}) and admin.accepts({"x-api-key": "file-admin"})
    assert not admin.accepts({"x-api-key": "ops"})
    from ozfig.errors import SettingsError

    same = Settings(api_key=("shared",), admin_key=("shared",))
    with pytest.raises(SettingsError, match="also an API key"):
        KeyCheck.admin_from_settings(same, KeyCheck.from_settings(same))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match="--admin-key-file / OZFIG_ADMIN_KEY_FILE"):
        KeyCheck.admin_from_settings(Settings(admin_key_file=str(tmp_path / "empty")), KeyCheck(()))


def test_health_names_no_path_and_gives_details_to_the_admin_key_only(tmp_path) -> None:
    secret = tmp_path / "secret-dir" / "model.gguf"
    with TestClient(create_app(Settings(model=str(secret), admin_key=(ADMIN,)))) as c:
        deadline = time.monotonic() + 30
        while c.get("/health").json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for path in ("/health", "/livez"):
            r = c.get(path)
            assert r.status_code == 503 and r.json() == {"status": "failed", "reason": "model_not_found"}
            assert "secret-dir" not in r.text
        assert "secret-dir" not in c.get("/health", headers={"X-Api-Key": "wrong"}).text
        admin = c.get("/health", headers={"X-Api-Key": ADMIN})
        assert admin.json()["reason"] == "model_not_found" and "secret-dir" in admin.json()["detail"]
        assert "secret-dir" not in c.get("/livez", headers={"X-Api-Key": ADMIN}).text


def test_metrics_public_opens_only_metrics() -> None:
    with app_client(api_key=(KEY,), metrics_public=True) as c:
        assert c.get("/metrics").status_code == 200
        assert c.get("/v1/models").status_code == 401


def test_keys_from_flags_environment_and_file(tmp_path) -> None:
    parser = argparse.ArgumentParser()
    add_options(parser, Settings)
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nfile-key-1\n\nfile-key-2  # ops\n")
    args = parser.parse_args(["--api-key", "a", "--api-key", "b", "--api-key-file", str(key_file)])
    settings = from_sources(Settings, args, environ={"OZFIG_API_KEY": "ignored"})
    keys = KeyCheck.from_settings(settings)
    for key in ("a", "b", "file-key-1", "file-key-2"):
        assert keys.accepts({"x-api-key": key})
    assert not keys.accepts({"x-api-key": "ignored"})
    from_env = KeyCheck.from_settings(from_sources(Settings, None, environ={"OZFIG_API_KEY": "k1, k2"}))
    assert from_env.accepts({"authorization": "Bearer k2"}) and not from_env.accepts({})
    assert not KeyCheck.from_settings(from_sources(Settings, None, environ={})).enabled


def test_a_key_file_without_keys_is_a_clean_error(tmp_path) -> None:
    from ozfig.errors import SettingsError

    empty = tmp_path / "keys"
    empty.write_text("# nothing\n")
    with pytest.raises(SettingsError, match="holds no key"):
        KeyCheck.from_settings(Settings(api_key_file=str(empty)))


def test_host_check_default_on_loopback_and_configured() -> None:
    with app_client() as c:  # default bind 127.0.0.1: loopback names only
        assert Settings().host == "127.0.0.1"
        r = c.get("/v1/models", headers={"host": "evil.example:8080"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "host_not_allowed"
        for host in ("localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST"):
            assert c.get("/v1/models", headers={"host": host}).status_code != 400, host
        assert c.get("/health", headers={"host": "evil.example"}).status_code in (200, 503)  # probes pass
    hosts = HostCheck.from_settings(
        Settings(host="0.0.0.0", allowed_hosts="ozfig.example.com, *.corp.example")
    )
    assert hosts.accepts("ozfig.example.com") and hosts.accepts("a.corp.example:443")
    assert (
        not hosts.accepts("corp.example")
        and not hosts.accepts("evilcorp.example")
        and not hosts.accepts(None)
    )
    assert HostCheck.from_settings(Settings(host="0.0.0.0")).patterns is None
    assert HostCheck.from_settings(Settings(allowed_hosts="*")).patterns is None


def test_startup_warnings_when_exposed() -> None:
    exposed = Settings(host="0.0.0.0")
    warnings = startup_warnings(exposed, KeyCheck.from_settings(exposed), HostCheck.from_settings(exposed))
    assert any("WITHOUT an API key" in w for w in warnings)
    assert any("--allowed-hosts" in w for w in warnings)
    safe = Settings(host="0.0.0.0", api_key=("k",), allowed_hosts="ozfig.example.com")
    assert startup_warnings(safe, KeyCheck.from_settings(safe), HostCheck.from_settings(safe)) == []
    local = Settings()
    assert startup_warnings(local, KeyCheck.from_settings(local), HostCheck.from_settings(local)) == []


def test_cors_is_off_by_default() -> None:
    with app_client() as c:
        r = c.get("/health", headers={"origin": "https://app.example"})
        assert "access-control-allow-origin" not in r.headers
        r = c.options(
            "/v1/chat/completions",
            headers={"origin": "https://app.example", "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in r.headers and r.status_code == 405
        assert r.json()["error"]["code"] == "method_not_allowed"


def test_cors_with_origins() -> None:
    with app_client(cors_origins="https://app.example", api_key=(KEY,)) as c:
        pre = {"origin": "https://app.example", "access-control-request-method": "POST",
               "access-control-request-headers": "authorization, content-type"}  # fmt: skip
        r = c.options("/v1/chat/completions", headers=pre)  # preflights carry no key
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "Authorization" in r.headers["access-control-allow-headers"]
        r = c.options("/v1/chat/completions", headers={**pre, "origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
        assert "access-control-allow-origin" not in r.headers
        r = c.get("/v1/models", headers={"origin": "https://app.example", "x-api-key": KEY})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "X-Request-Id" in r.headers["access-control-expose-headers"]
        r = c.get("/v1/models", headers={"origin": "https://app.example"})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "https://app.example"


def test_request_id_on_every_response() -> None:
    with app_client(api_key=(KEY,)) as c:
        for path in ("/health", "/nope", "/v1/models", "/prompt/x"):
            r = c.get(path, headers={"X-Request-Id": "client.id-42_A"})
            assert r.headers["x-request-id"] == "client.id-42_A", path
        for bad in ("a" * 129, "has space", "semi;colon", "", "a/b"):
            r = c.get("/health", headers={"X-Request-Id": bad})
            assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), bad
        ids = {c.get("/health").headers["x-request-id"] for _ in range(3)}
        assert len(ids) == 3


def test_log_lines_carry_the_request_id(caplog) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO, logger=gate.__name__), app_client() as c:
        c.get("/nope", headers={"X-Request-Id": "trace-me-7"})
    lines = [r for r in caplog.records if getattr(r, "request_id", None) == "trace-me-7"]
    assert any("/nope 404" in r.getMessage() for r in lines)
    record = logging.LogRecord("ozfig.x", logging.WARNING, __file__, 1, "hello %s", ("there",), None)
    token = request_id.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    entry = json.loads(JsonFormatter().format(record))
    assert (
        entry["request_id"] == "rid-1" and entry["message"] == "hello there" and entry["level"] == "warning"
    )


def test_uvicorn_concurrency_limit_answers_json() -> None:
    settings = Settings(model="/nonexistent/model.gguf", port=free_port())
    app = create_app(settings)
    json_refusals(app.state.metrics.observe_error)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, limit_concurrency=1, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # the limit counts the asking connection too: with 1, every request is past it
        status, body = get_json(f"http://127.0.0.1:{settings.port}/v1/models")
        assert status == 503 and body["error"]["code"] == "concurrency_limit"
        status, body = get_json(f"http://127.0.0.1:{settings.port}/prompt/x")
        assert status == 503 and body["code"] == "concurrency_limit"
    finally:
        server.should_exit = True
        thread.join(30)
    text = app.state.metrics.render().decode()
    assert 'ozfig_requests_rejected_total{code="concurrency_limit"} 2.0' in text
