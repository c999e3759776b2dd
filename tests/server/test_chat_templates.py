"""Every public template, served: the prompt is, token for token, the template's render of the real messages.

For each template of tests/data/chat_templates, a copy of the test model carrying it
(gguf-new-metadata) is served in process. The reference is independent of ozfig's renderer:
transformers' apply_chat_template renders the actual contents, and llama.cpp tokenizes that
whole text with special-token parsing on (right for these benign contents), BOS added as the
vocabulary asks unless the template wrote it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from ozfig.llama.model import LlamaModel
from server.app import create_app
from server.prompt_build import SYSTEM_PROMPT, user_message
from tests.conftest import make_settings, wait_ready
from tests.support.chat_templates import KNOWN_TEMPLATES, KnownTemplate, conversation, reference_render
from tests.support.processes import free_port, ozfig_command
from tests.support.templated_model import with_chat_template

pytestmark = pytest.mark.model


class Served:
    def __init__(self, known: KnownTemplate, path: Path, client: TestClient) -> None:
        self.known = known
        self.client = client
        self.model = LlamaModel(str(path))

    def reference_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        m = self.model
        render = reference_render(
            self.known.source, messages, bos=m.token_text(m.bos), eos=m.token_text(m.eos)
        )
        tokens = m.tokenize(render, parse_special=True)
        if m.add_bos and (not tokens or tokens[0] != m.bos):
            tokens.insert(0, m.bos)
        return tokens

    def ozfig_reference(self, query: str) -> list[dict[str, str]]:
        """The OzFig messages for `query` without web sources, the system prompt folded where refused."""
        user = user_message(query, [])
        if self.known.system_role:
            return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
        return [{"role": "user", "content": f"{SYSTEM_PROMPT}\n\n{user}"}]

    def chat(self, messages: list[dict[str, str]]) -> tuple[int, dict]:
        r = self.client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 1})
        return r.status_code, r.json()

    def prompt_tokens(self, query: str) -> int:
        r = self.client.get("/prompt/" + quote(query, safe=""))
        assert r.status_code == 200, r.text
        return int(r.json()["usage"]["prompt_tokens"])


@pytest.fixture(scope="module", params=KNOWN_TEMPLATES, ids=lambda t: t.name)
def served(request: pytest.FixtureRequest, model_path: Path, fake_ddg_server) -> Iterator[Served]:
    known: KnownTemplate = request.param
    path = with_chat_template(model_path, known.path)
    settings = make_settings(path, fake_ddg_server.url, web_context_tokens=0, max_tokens=1, slots=1)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        s = Served(known, path, client)
        yield s
        s.model.close()


def test_chat_prompt_is_the_reference_render(served: Served) -> None:
    messages = conversation(served.known.system_role)
    status, body = served.chat(messages)
    assert status == 200, body
    assert body["usage"]["prompt_tokens"] == len(served.reference_tokens(messages))


def test_chat_prompt_grows_with_the_message(served: Served) -> None:
    short = [{"role": "user", "content": "hi"}]
    long = [{"role": "user", "content": " ".join(["word"] * 200)}]
    n_short = served.chat(short)[1]["usage"]["prompt_tokens"]
    n_long = served.chat(long)[1]["usage"]["prompt_tokens"]
    assert n_short == len(served.reference_tokens(short))
    assert n_long == len(served.reference_tokens(long))
    assert n_long >= n_short + 190


def test_prompt_route_renders_the_query(served: Served) -> None:
    for query in ("hi", "what is the tallest mountain in the world " * 5):
        assert served.prompt_tokens(query) == len(served.reference_tokens(served.ozfig_reference(query)))
    assert served.prompt_tokens("x " * 50) > served.prompt_tokens("x") + 40


def test_web_search_puts_the_system_prompt_where_the_template_takes_it(served: Served) -> None:
    question = "  what is the capital of Australia? "
    r = served.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": question}], "max_tokens": 1, "web_search": True},
    )
    assert r.status_code == 200, r.text
    # no snippets here (--max-snippets 0): the OzFig messages of the question, system prompt folded where refused
    expected = served.ozfig_reference(question)
    assert r.json()["usage"]["prompt_tokens"] == len(served.reference_tokens(expected))


def test_a_role_the_template_refuses_is_a_400_with_its_message(served: Served) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    status, body = served.chat(messages)
    if served.known.system_role:
        assert status == 200
        return
    assert status == 400, body
    assert body["error"]["code"] == "template_refused"
    assert body["error"]["type"] == "invalid_request_error"
    assert "chat template refused" in body["error"]["message"]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        (
            "{% for m in messages %}<|im_start|>{{ m.role }}<|im_end|>{% endfor %}",
            "does not put every message",
        ),
        ("{% for m in messages %}{{ m.content }}", "does not compile"),
    ],
    ids=["loses-contents", "does-not-compile"],
)
def test_serve_refuses_a_template_it_cannot_use(
    model_path: Path, tmp_path_factory: pytest.TempPathFactory, template: str, fragment: str
) -> None:
    source = tmp_path_factory.mktemp("bad-template") / "bad.jinja"
    source.write_text(template)
    bad = with_chat_template(model_path, source)
    proc = subprocess.run(
        ozfig_command("serve", "--port", str(free_port()), "--model", str(bad)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert fragment in proc.stderr and "chat template" in proc.stderr
