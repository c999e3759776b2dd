"""The default model's template (Llama 3.1's) through a real `ozfig serve`: the model sees the question.

Before the fix, every content was replaced by a stand-in that Llama 3's `| trim` destroyed:
`/prompt/hi` and a 50-word query both took 120 prompt tokens. Here the prompt grows with
the query, equals the reference render's tokens, and the prompt the server logs (at debug
level) holds the query and the message.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ozfig.llama.model import LlamaModel
from server.prompt_build import SYSTEM_PROMPT, user_message
from tests.support.chat_templates import BY_NAME, reference_render
from tests.support.processes import free_port, get_json, ozfig_command
from tests.support.templated_model import with_chat_template

pytestmark = pytest.mark.model
LLAMA31 = BY_NAME["llama-3.1-instruct"]


def post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@pytest.fixture(scope="module")
def llama31_model(model_path: Path) -> Path:
    return with_chat_template(model_path, LLAMA31.path)


@pytest.fixture(scope="module")
def server(llama31_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real `ozfig serve` (debug log to a file, so a full pipe never blocks it)."""
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    port = free_port()
    args = ["--model", str(llama31_model), "--web-context-tokens", "0", "--max-tokens", "2", "--ctx", "1024"]
    args += ["--slots", "1", "--threads", "2", "--log-level", "debug"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ozfig_command("serve", "--host", "127.0.0.1", "--port", str(port), *args),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                if get_json(base + "/health", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "ozfig serve did not become ready"
            time.sleep(0.1)
        yield base, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def reference(llama31_model: Path) -> Iterator[Any]:
    model = LlamaModel(str(llama31_model))

    def tokens(messages: list[dict[str, str]]) -> int:
        render = reference_render(LLAMA31.source, messages, bos=model.token_text(model.bos), eos="")
        ids = model.tokenize(render, parse_special=True)
        return len(ids) + (1 if model.add_bos and ids[:1] != [model.bos] else 0)

    yield tokens
    model.close()


def logged_prompts(log_path: Path) -> str:
    return "\n".join(line for line in log_path.read_text().splitlines() if "prompt of" in line)


def test_prompt_route_puts_the_query_into_the_prompt(server: tuple[str, Path], reference: Any) -> None:
    base, log_path = server
    counts = {}
    for query in ("hi", " ".join(f"word{i}" for i in range(50))):
        status, body = get_json(base + "/prompt/" + urllib.parse.quote(query))
        assert status == 200, body
        counts[query] = body["usage"]["prompt_tokens"]
        expected = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_message(query, [])},
        ]
        assert counts[query] == reference(expected)
        assert query in logged_prompts(log_path)
    short, long = counts.values()
    assert long >= short + 50  # before the fix: 120 and 120


def test_chat_completions_put_the_message_into_the_prompt(server: tuple[str, Path], reference: Any) -> None:
    base, log_path = server
    counts = []
    for content in ("hello", " ".join(f"token{i}" for i in range(200))):
        messages = [{"role": "user", "content": content}]
        status, body = post_json(base + "/v1/chat/completions", {"messages": messages, "max_tokens": 1})
        assert status == 200, body
        counts.append(body["usage"]["prompt_tokens"])
        assert counts[-1] == reference(messages)
        assert content in logged_prompts(log_path)
    assert counts[1] >= counts[0] + 200  # before the fix: 112 and 112
