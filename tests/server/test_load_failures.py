"""Failures are loud: anything that goes wrong while loading ends `ozfig serve` with one line and exit 1."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from starlette.testclient import TestClient

from ozfig.errors import ModelFetchError, ModelNotFoundError
from server.app import create_app
from server.model_source import parse_hub_reference, resolve_model_path
from server.runtime import Runtime
from tests.conftest import make_settings
from tests.support.processes import free_port, get_json, ozfig_command, serving
from tests.support.vocab_gguf import vocabulary_only


def run_serve(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ozfig_command("serve", "--host", "127.0.0.1", "--port", str(free_port()), *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_exit_1(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("ozfig: error:")]
    for fragment in fragments:
        assert fragment in line, line


def test_a_hub_name_the_hub_cannot_parse_ends_the_process(tmp_path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = run_serve("--model", "someone/bad repo/x.gguf", env=env, timeout=60)
    assert_one_line_exit_1(proc, "someone/bad repo/x.gguf", "no local file", "Hub")


def test_a_warm_up_failure_is_reported_not_loading_forever(model_path, fake_ddg_server) -> None:
    class FailingWarmUp(Runtime):
        @staticmethod
        async def _warm_up(engine, formatter) -> None:  # type: ignore[no-untyped-def, override]
            raise RuntimeError("llama_decode returned -1")

    settings = make_settings(model_path, fake_ddg_server.url, ctx=256, admin_key=("admin-key",))
    fatal: list[str] = []
    engines_before = {t.ident for t in threading.enumerate() if t.name == "ozfig-engine"}
    runtime = FailingWarmUp.from_settings(settings)
    runtime.on_fatal = lambda exc: fatal.append(exc.message)
    with TestClient(create_app(settings, runtime)) as client:
        deadline = time.monotonic() + 60
        while client.get("/health").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
        r = client.get("/health")
        assert r.status_code == 503 and r.json() == {"status": "failed", "reason": "model_load_failed"}
        r = client.get("/health", headers={"X-Api-Key": "admin-key"})  # the details: for the admin key
        assert "llama_decode returned -1" in r.json()["detail"]
        assert (
            client.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
            ).status_code
            == 503
        )
    assert fatal and "RuntimeError" in fatal[0]
    # the engine that failed its warm-up was closed (its thread gone) before the model it decodes with
    assert not [t for t in threading.enumerate() if t.name == "ozfig-engine" and t.ident not in engines_before]


def test_tilde_is_expanded_for_model_and_lora(tmp_path, model_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "m.gguf").symlink_to(model_path)
    env = {"HOME": str(home)}
    with serving("--model", "~/m.gguf", "--ctx", "256", "--max-tokens", "1", env=env) as base:
        assert get_json(base + "/health")[0] == 200
    with serving("--ctx", "256", "--max-tokens", "1", env={**env, "OZFIG_MODEL": "~/m.gguf"}) as base:
        assert get_json(base + "/health")[0] == 200
    proc = run_serve("--model", "~/m.gguf", "--lora", "~/adapter.gguf", "--ctx", "256", env=env)
    assert proc.returncode == 1
    assert str(home / "adapter.gguf") in proc.stderr  # expanded, then found missing


def test_a_model_value_is_local_when_its_first_folder_exists(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable when it is imported: set what it reads at call time
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert parse_hub_reference("owner/repo/m.gguf") is not None
    (tmp_path / "models").mkdir()
    assert parse_hub_reference("models/x/m.gguf") is None  # not the Hub repo models/x
    assert parse_hub_reference("hf://models/x/m.gguf") is not None
    for local in ("./a/b/c.gguf", "/a/b/c.gguf", "~/a/b.gguf", "m.gguf"):
        assert parse_hub_reference(local) is None
    with pytest.raises(ModelNotFoundError) as missing:
        resolve_model_path("models/x/m.gguf")
    assert "no local file 'models/x/m.gguf'" in missing.value.message
    assert "'models/x'" in missing.value.message  # the Hub reading, named too
    with pytest.raises(ModelFetchError):
        resolve_model_path("owner/repo/m.gguf")  # read as a Hub file; offline


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_max_connections_limits_open_connections(model_path) -> None:
    with serving("--model", str(model_path), "--ctx", "256", "--max-connections", "2") as base:
        assert get_json(base + "/health")[0] == 200
        port = int(base.rsplit(":", 1)[1])
        # an idle client holds one: once uvicorn has accepted it, every request is past the limit
        # (the asking connection counts too), until the idle one closes
        with socket.create_connection(("127.0.0.1", port)):
            until_status(base + "/health", 503)
            assert status_of(base + "/health") == 503
        until_status(base + "/health", 200)


def until_status(url: str, status: int, timeout: float = 10) -> None:
    """Until `url` answers `status`: the server has seen the connection open (or close)."""
    deadline = time.monotonic() + timeout
    while status_of(url) != status:
        assert time.monotonic() < deadline, f"{url} never answered {status}"
        time.sleep(0.02)


def test_a_draft_model_of_another_vocabulary_is_refused_at_start(model_path, tmp_path) -> None:
    # the test model's own metadata with one token's text changed (gguf-py; no weights needed:
    # the draft's vocabulary is checked before its weights are loaded)
    other = vocabulary_only(model_path, tmp_path / "other-vocab.gguf", {1000: "not-the-same"})
    proc = run_serve("--model", str(model_path), "--draft-model", str(other), timeout=120)
    assert_one_line_exit_1(proc, "draft model", "vocabularies differ", "token 1000")


def test_speculative_draft_without_a_draft_model_is_refused_at_start(model_path) -> None:
    proc = run_serve("--model", str(model_path), "--speculative", "draft", timeout=120)
    assert_one_line_exit_1(proc, "--draft-model")
