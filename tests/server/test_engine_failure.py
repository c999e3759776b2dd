"""Failures are loud after startup too: when the engine thread dies, every request gets a 503 at once."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from server.app import create_app
from server.runtime import Runtime
from tests.conftest import make_settings, wait_ready

HELLO = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


def test_engine_thread_death_is_a_503_for_everyone_and_ends_the_process(
    model_path, fake_ddg_server, monkeypatch
) -> None:
    settings = make_settings(model_path, fake_ddg_server.url, ctx=256, slots=1, admin_key=("admin-key",))
    runtime = Runtime.from_settings(settings)
    fatal: list[str] = []
    runtime.on_fatal = lambda exc: fatal.append(exc.message)
    with TestClient(create_app(settings, runtime)) as client:
        wait_ready(client)
        assert runtime.engine is not None

        def crash() -> None:
            raise RuntimeError("simulated crash in the decode loop")

        monkeypatch.setattr(runtime.engine.runner, "step", crash)
        r = client.post("/v1/chat/completions", json=HELLO)  # in flight when the engine dies
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "engine_stopped"
        health = client.get("/health")
        assert health.status_code == 503 and health.json() == {"status": "failed", "reason": "engine_stopped"}
        health = client.get("/health", headers={"X-Api-Key": "admin-key"})
        assert "simulated crash" in health.json()["detail"]
        start = time.monotonic()
        for _ in range(3):  # new requests: refused at once, never queued
            assert client.post("/v1/chat/completions", json=HELLO).status_code == 503
            assert client.get("/prompt/hello").status_code == 503
        assert time.monotonic() - start < 5
    assert fatal and "simulated crash" in fatal[0]  # the CLI exits non-zero on it
