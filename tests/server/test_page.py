"""The chat page at /: content negotiation, its scripts, and the page itself in headless Chromium.

The browser tests type a question, watch the answer stream in with the fake search's
source link under it, press Stop and check that the server cancelled the generation; and
render a scripted answer (markdown, hostile HTML in the answer and in source titles) to
check that markdown is rendered, [n] is linked to its source, and nothing executes.
"""

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from starlette.testclient import TestClient

if TYPE_CHECKING:
    from playwright.sync_api import Locator

from server.runtime import Runtime
from tests.conftest import make_settings
from tests.server.test_sse_disconnect import cancelled, health, live_server, wait_until
from tests.support.token_gate import TokenGate

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_browsers_get_the_page_and_api_clients_the_hint(client: TestClient) -> None:
    r = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    assert "<title>OzFig</title>" in r.text
    assert "http://" not in r.text.replace("http://localhost", "") and "https://" not in r.text  # no CDN
    assert "script-src 'self';" in r.headers["content-security-policy"]  # no inline script runs
    assert "<script>" not in r.text
    hint = {"message": "Use /prompt/{query} to talk with the OzFig"}
    for accept in ("*/*", "application/json", "application/json, text/html;q=0.5", None):
        r = client.get("/", headers={"Accept": accept} if accept else {})
        assert r.status_code == 200 and r.json() == hint, accept


VENDOR = Path(__file__).resolve().parents[2] / "server" / "static" / "vendor"


def test_the_page_scripts_are_served_and_the_vendored_ones_are_the_pinned_files(client: TestClient) -> None:
    pinned = {}
    for line in (VENDOR / "README.md").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            pinned[parts[1]] = parts[0]
    assert set(pinned) == {"marked.umd.js", "purify.min.js"}
    for name, digest in pinned.items():
        r = client.get(f"/static/vendor/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert hashlib.sha256(r.content).hexdigest() == digest
    for licence in ("marked.LICENSE", "dompurify.LICENSE", "dompurify.LICENSE-MPL"):
        assert (VENDOR / licence).stat().st_size > 1000
    assert client.get("/static/chat.js").status_code == 200
    for name in ("vendor/README.md", "../app.py", "index.html", "nothing.js"):
        assert client.get(f"/static/{name}").status_code == 404


def text_of(message: "Locator") -> str:
    """The text of a chat message (locators read the DOM without eval, which the page's CSP forbids)."""
    return message.locator(".text").text_content() or ""


def chromium_executable() -> str | None:
    for candidate in (os.environ.get("OZFIG_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def page_server(model_path, fake_ddg_server) -> Iterator[tuple[str, Runtime]]:
    # one slot and no queue: a second request while the page's answer runs is refused (503)
    settings = make_settings(
        model_path, fake_ddg_server.url, max_tokens=900, slots=1, queue=0, heartbeat=0.5, ctx=1024
    )
    with live_server(settings) as served:
        yield served


@pytest.mark.browser
def test_chat_page_streams_shows_sources_and_stop_cancels_on_the_server(
    page_server, ddg, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO)
    executable = chromium_executable()
    if executable is None:
        pytest.skip(
            "no Chromium found (/usr/bin/chromium or on PATH; set OZFIG_CHROMIUM): .ci/run installs it"
        )
    from playwright.sync_api import sync_playwright

    base, runtime = page_server
    assert runtime.engine is not None
    sent: list[dict] = []
    # the engine decodes only the tokens this test allows: no answer can end before its Stop
    with sync_playwright() as p, TokenGate(runtime.engine).installed() as gate:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 640})
            page.on(
                "request",
                lambda req: (
                    sent.append(json.loads(req.post_data or "{}"))
                    if req.url.endswith("/v1/chat/completions")
                    else None
                ),
            )
            page.goto(base + "/")
            assert page.title() == "OzFig"
            assert page.is_checked("#web")

            # ask: tokens stream in, the source link appears
            page.fill("#prompt", "what is rust")
            gate.allow(8)
            page.press("#prompt", "Enter")
            answer = page.locator(".msg.assistant").last
            wait_until(lambda: len(text_of(answer)) > 0, 90, "no answer text appeared")
            first = text_of(answer)
            gate.allow(8)
            wait_until(lambda: len(text_of(answer)) > len(first), 60, "the answer did not grow")
            assert answer.get_attribute("data-state") == "streaming"
            links = answer.locator(".sources a")
            hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
            assert hrefs and all(
                h.startswith("https://fake.example/") for h in hrefs
            )  # what fit beside 900 answer tokens
            assert ddg.queries == ["what is rust"]
            assert sent[0]["stream"] is True and sent[0]["web_search"] is True
            assert health(base)["busy_slots"] == 1

            # the only slot is taken: an API client is told to come back later
            r = httpx.post(
                base + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
            )
            assert r.status_code == 503 and r.json()["error"]["code"] == "overloaded"
            assert r.headers["retry-after"]

            # stop: the server cancels the generation at once
            before = cancelled(runtime)
            page.click("#stop")
            try:
                wait_until(lambda: cancelled(runtime) == before + 1, 10, "Stop did not cancel the generation")
            except AssertionError as failure:  # say where it stuck: the page, the socket or the engine
                state = answer.get_attribute("data-state")
                seen = [f"{r.name}: {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
                slots = [(s.job.cancelled, s.generated) for s in runtime.engine.runner.slots if s]
                finished = runtime.engine.stats.requests_finished
                raise AssertionError(
                    f"{failure}: page {state}, finished {finished} (before {before}), slots {slots}, gate {gate.allowed}, "
                    f"health {health(base)}, log {seen}"
                ) from None
            wait_until(lambda: health(base)["busy_slots"] == 0, 10, "the slot stayed busy after Stop")
            page.wait_for_selector(".msg.assistant[data-state=stopped]", timeout=10_000)
            stopped_text = text_of(answer)
            stopped_raw = answer.locator(".text").get_attribute("data-raw")
            time.sleep(0.5)
            assert text_of(answer) == stopped_text
            assert answer.locator(".meta").text_content() == "stopped"
            page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)

            # a second turn, web search off: the history goes with it, and Stop works again
            page.uncheck("#web")
            page.fill("#prompt", "Now write a long story about a cat, with many chapters.")
            gate.allow(8)
            page.click("#send")
            second = page.locator(".msg.assistant").nth(1)
            wait_until(lambda: len(text_of(second)) > 0, 90, "no second answer appeared")
            turn = sent[-1]
            assert turn["web_search"] is False
            assert [m["role"] for m in turn["messages"]] == ["user", "assistant", "user"]
            assert turn["messages"][1]["content"] == stopped_raw
            assert ddg.queries == ["what is rust"]
            page.click("#stop")
            wait_until(
                lambda: cancelled(runtime) == before + 2,
                10,
                lambda: (
                    f"the second Stop did not cancel: {runtime.engine.stats.requests_finished} (before {before})"
                ),
            )
            page.screenshot(path=str(tmp_path / "chat-two-turns.png"), full_page=True)
        finally:
            browser.close()


HOSTILE_ANSWER = (
    "## Rust\n\nRust is **fast** [1] and *safe* [2]; see [3] and `[1]` in code.\n\n"
    "- one\n- two\n\n```python\nprint('<b>hi</b>')\n```\n\n"
    "<script>document.title = 'pwned'</script><img src=x onerror=\"document.title='pwned'\">"
    "<a href=\"javascript:document.title='pwned'\">click</a> <b onclick=\"document.title='pwned'\">bold</b>"
)
HOSTILE_SOURCES = [
    {
        "n": 1,
        "title": "<script>document.title='pwned'</script>Rust site",
        "url": "https://rust.example/",
        "text": "t",
    },
    {"n": 2, "title": "<img src=x onerror=alert(1)>", "url": "https://safe.example/", "text": "t"},
]


def scripted_stream(answer: str, sources: list[dict]) -> str:
    def chunk(delta: dict, **extra: object) -> str:
        body = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
            **extra,
        }
        return "data: " + json.dumps(body) + "\n\n"

    pieces = [chunk({"role": "assistant", "content": ""}, sources=sources)]
    pieces += [chunk({"content": answer[i : i + 7]}) for i in range(0, len(answer), 7)]
    return "".join(pieces) + "data: [DONE]\n\n"


@pytest.mark.browser
def test_answers_render_as_sanitized_markdown_with_linked_citations(page_server) -> None:
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium found (/usr/bin/chromium or on PATH; set OZFIG_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    base, _ = page_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.route(
                "**/v1/chat/completions",
                lambda route: route.fulfill(
                    status=200,
                    headers={"Content-Type": "text/event-stream"},
                    body=scripted_stream(HOSTILE_ANSWER, HOSTILE_SOURCES),
                ),
            )
            offline: list[str] = []
            page.on("request", lambda req: offline.append(req.url) if not req.url.startswith(base) else None)
            page.goto(base + "/")
            page.fill("#prompt", "what is rust")
            page.press("#prompt", "Enter")
            page.wait_for_selector(".msg.assistant[data-state=done]", timeout=20_000)
            text = page.locator(".msg.assistant .text")
            assert text.locator("h2").text_content() == "Rust"
            assert text.locator("strong").text_content() == "fast"
            assert text.locator("li").count() == 2
            assert "print('<b>hi</b>')" in (text.locator("pre code").text_content() or "")
            cites = text.locator("a.cite")
            assert cites.count() == 2  # [1] and [2]; [3] has no source; `[1]` is code
            assert (
                cites.nth(0).text_content() == "[1]"
                and cites.nth(0).get_attribute("href") == "https://rust.example/"
            )
            assert cites.nth(0).get_attribute("title") == "<script>document.title='pwned'</script>Rust site"
            assert cites.nth(1).get_attribute("href") == "https://safe.example/"
            assert "[3]" in (text.text_content() or "")
            # nothing executable survived: no script, no image, no handler, no javascript: link
            assert text.locator("script, img, [onerror], [onclick]").count() == 0
            for i in range(text.locator("a").count()):
                href = text.locator("a").nth(i).get_attribute("href") or ""
                assert not href.lower().startswith("javascript:")
            sources = page.locator(".msg.assistant .sources a")
            assert sources.nth(0).text_content() == "<script>document.title='pwned'</script>Rust site"
            assert page.locator(".msg.assistant .sources script, .msg.assistant .sources img").count() == 0
            time.sleep(0.3)
            assert page.title() == "OzFig" and dialogs == []
            assert offline == []  # the page loaded nothing from elsewhere
        finally:
            browser.close()
