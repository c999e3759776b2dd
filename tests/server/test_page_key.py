"""The chat page on a server started with --api-key: it asks for the key once, keeps it in the
browser (localStorage), and sends it with every question; a wrong key is asked for again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.runtime import Runtime
from tests.conftest import make_settings
from tests.server.test_page import CHROMIUM_ARGS, chromium_executable, text_of
from tests.server.test_sse_disconnect import live_server

KEY = "sk-page-key-1"


@pytest.fixture(scope="module")
def keyed_server(model_path, fake_ddg_server) -> Iterator[tuple[str, Runtime]]:
    settings = make_settings(model_path, fake_ddg_server.url, api_key=(KEY,), max_tokens=8, ctx=1024)
    with live_server(settings) as served:
        yield served


@pytest.mark.browser
def test_chat_page_asks_for_the_key_once_and_keeps_it(keyed_server, ddg) -> None:
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium found (/usr/bin/chromium or on PATH; set OZFIG_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    base, _ = keyed_server
    answers = iter(["wrong-key", KEY])
    asked: list[str] = []
    auth: list[str | None] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (asked.append(d.message), d.accept(next(answers))))
            page.on(
                "request",
                lambda r: (
                    auth.append(r.headers.get("authorization"))
                    if r.url.endswith("/v1/chat/completions")
                    else None
                ),
            )
            page.goto(base + "/")
            page.fill("#prompt", "what is rust")
            page.press("#prompt", "Enter")
            # no key: 401, asked; the wrong key: 401, the request fails and says so
            page.wait_for_selector(".msg.assistant[data-state=error]", timeout=60_000)
            assert len(asked) == 1 and "needs an API key" in asked[0]
            # asked again (the stored key was refused), then the right one: the answer streams
            page.fill("#prompt", "what is rust")
            page.press("#prompt", "Enter")
            page.wait_for_selector(".msg.assistant[data-state=done]", timeout=120_000)
            assert len(asked) == 2 and "refused" in asked[1]
            assert text_of(page.locator(".msg.assistant").last).strip()
            # kept: after a reload the page sends the key without asking
            page.reload()
            page.fill("#prompt", "and go?")
            page.press("#prompt", "Enter")
            page.wait_for_selector(".msg.assistant[data-state=done]", timeout=120_000)
            assert len(asked) == 2
            assert auth[0] is None and auth[-1] == f"Bearer {KEY}"
        finally:
            browser.close()
