"""`ozfig serve` as a user runs it: a real process on a free port, and its startup errors."""

import os
import shutil
import subprocess
import urllib.parse

import pytest

from tests.support.fake_web import ARTICLE_SENTENCE
from tests.support.processes import free_port, get_json, ozfig_command, serving


def test_real_server_answers_prompt_over_http(model_path, ddg, web) -> None:
    ddg.results["what is rust"] = [("The Quistal tide mill", web.url("/article"), "A mill by the sea.")]
    args = [
        "--model",
        str(model_path),
        "--search-url",
        ddg.url,
        "--search-html-url",
        ddg.html_url,
        "--fetch-allow",
        "127.0.0.2/32",
        "--web-context-tokens",
        "400",
        "--max-tokens",
        "16",
        "--ctx",
        "1024",
        "--slots",
        "2",
    ]
    with serving(*args) as base:
        status, health = get_json(base + "/health")
        assert status == 200 and health["status"] == "ok"
        status, body = get_json(base + "/prompt/" + urllib.parse.quote("what is rust"))
    assert status == 200
    assert body["message"].strip()
    by_url = {s["url"]: s for s in body["sources"]}
    assert "https://fake.example/wiki/abstract" in by_url
    assert ARTICLE_SENTENCE in by_url[web.url("/article")]["text"]  # the page was read
    assert by_url[web.url("/article")]["title"] == "The Quistal tide mill"
    assert [s["n"] for s in body["sources"]] == list(range(1, len(body["sources"]) + 1))
    assert ddg.queries == ["what is rust"] and ddg.html_queries == ["what is rust"]
    assert web.requests == [("127.0.0.2", "/article")]


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ozfig_command("serve", "--port", str(free_port()), *args),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in proc.stderr


def test_missing_model_file(tmp_path) -> None:
    proc = run_serve("--model", str(tmp_path / "nope.gguf"))
    assert_clean_failure(proc, "does not exist", "--model")


def test_file_that_is_not_gguf(tmp_path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_text("this is not a model")
    proc = run_serve("--model", str(bad))
    assert_clean_failure(proc, "is not a GGUF file")


def test_truncated_gguf(tmp_path, model_path) -> None:
    cut = tmp_path / "cut.gguf"
    with open(model_path, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(3_000_000))
    proc = run_serve("--model", str(cut))
    assert_clean_failure(proc, "could not load", "truncated")


def test_hub_model_offline(tmp_path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = run_serve("--model", "someone/some-repo/model.Q4_K_M.gguf", env=env)
    assert_clean_failure(proc, "Hugging Face", "local GGUF")


def test_bad_setting_is_refused(tmp_path) -> None:
    proc = run_serve("--ctx", "5")
    assert_clean_failure(proc, "--ctx / OZFIG_CTX must be at least 256")


def test_help_explains_every_setting() -> None:
    out = subprocess.run(ozfig_command("serve", "--help"), capture_output=True, text=True, timeout=60).stdout
    for flag in (
        "--model",
        "--host",
        "--port",
        "--ctx",
        "--max-tokens",
        "--gpu-layers",
        "--search-url",
        "--search-timeout",
        "--search",
        "--web-context-tokens",
        "--fetch-allow",
    ):
        assert flag in out
    assert "OZFIG_SEARCH_TIMEOUT" in out


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_example_works(model_path, ddg) -> None:
    with serving(
        "--model",
        str(model_path),
        "--search-url",
        ddg.url,
        "--search-html-url",
        ddg.html_url,
        "--max-tokens",
        "8",
        "--ctx",
        "1024",
    ) as base:
        out = subprocess.run(
            ["curl", "-s", base + "/prompt/what%20is%20rust"], capture_output=True, text=True, timeout=60
        )
    assert '"message"' in out.stdout
