"""ozfig against llama.cpp's llama-server on the same model, greedy: the same text from
/v1/completions, and the same logprob for each token of the same chat answer (within 0.05).
Skipped when llama-server is not built (tests/support/llama_server.py says where it is looked for)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.llama_server import LlamaServerCrashed, llama_server, llama_server_bin
from tests.support.processes import serving

pytestmark = pytest.mark.skipif(llama_server_bin() is None, reason="llama-server is not built")
PROMPT = "The three largest cities of France are"
HELLO = [{"role": "user", "content": "Tell me about the city of Paris."}]


def post(base: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def both(model_path) -> Iterator[tuple[str, str]]:
    args = ["--model", str(model_path), "--ctx", "2048", "--slots", "1", "--max-tokens", "64", "--threads", "2"]
    with serving(*args) as ours:
        try:
            with llama_server(model_path) as theirs:
                yield ours, theirs
        except LlamaServerCrashed as crash:
            pytest.skip(f"the reference cannot run on this machine: {crash}")


def test_completions_give_llama_servers_greedy_text(both) -> None:
    ours, theirs = both
    body = {"prompt": PROMPT, "max_tokens": 24, "temperature": 0}
    mine = post(ours, "/v1/completions", body)["choices"][0]["text"]
    reference = post(theirs, "/v1/completions", body)["choices"][0]["text"]
    assert mine == reference


def test_chat_logprobs_match_llama_servers_for_the_same_greedy_answer(both) -> None:
    ours, theirs = both
    body = {"messages": HELLO, "max_tokens": 16, "temperature": 0, "logprobs": True, "top_logprobs": 2}
    mine = post(ours, "/v1/chat/completions", body)["choices"][0]
    reference = post(theirs, "/v1/chat/completions", body)["choices"][0]
    assert mine["message"]["content"] == reference["message"]["content"]
    pairs = list(zip(mine["logprobs"]["content"], reference["logprobs"]["content"], strict=False))
    assert len(pairs) >= 4
    for a, b in pairs:
        assert a["token"] == b["token"]
        assert abs(a["logprob"] - b["logprob"]) < 0.05, (a, b)
