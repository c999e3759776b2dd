"""The event loop stays free: a huge hostile request does not stall /health, a stalled stream is dropped."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncGenerator

from server.api.sse import StreamedAnswer
from tests.support.processes import serving


def nested_markers(size: int) -> str:
    depth = size // len("--End of User Prompt--")
    return "--End of " * depth + "User Prompt--" * depth


def test_health_answers_while_a_huge_nested_marker_request_is_built(model_path, ddg) -> None:
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": nested_markers(700_000)}],
            "web_search": True,
            "max_tokens": 1,
        }
    ).encode()
    args = (
        "--model",
        str(model_path),
        "--search-url",
        ddg.url,
        "--search-html-url",
        ddg.html_url,
        "--ctx",
        "256",
        "--max-input-chars",
        "1000000",
    )
    with serving(*args) as base:
        outcome: list[int] = []

        def send() -> None:
            request = urllib.request.Request(
                base + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=300) as resp:
                    outcome.append(resp.status)
            except urllib.error.HTTPError as err:
                outcome.append(err.code)

        worker = threading.Thread(target=send)
        worker.start()
        # A wall-clock bound, on purpose: a stalled event loop shows only as time (every /health
        # is answered in the end, stalled or not), and no event marks "the loop was free". The
        # bound is about 100 times /health's own latency, so a busy machine does not fail it; a
        # prompt built on the event loop (seconds for this request) does.
        slowest = 0.0
        while worker.is_alive():
            start = time.monotonic()
            with urllib.request.urlopen(base + "/health", timeout=60) as resp:
                assert resp.status == 200
            slowest = max(slowest, time.monotonic() - start)
            time.sleep(0.05)
        worker.join()
    assert outcome == [200]  # every marker removed, what is left fits --ctx 256
    assert slowest < 2.0, f"/health took {slowest:.1f} s while the request was built"


def test_a_client_that_stops_reading_is_dropped_after_send_timeout() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncGenerator[str, None]:
        try:
            while True:
                yield "data: x\n\n"
                await asyncio.sleep(0)
        finally:
            closed.set()

    sent = 0

    async def run() -> None:
        nonlocal sent

        async def send(message: dict[str, object]) -> None:  # a client whose buffers are full
            nonlocal sent
            sent += 1
            if sent > 3:
                await asyncio.Event().wait()

        async def receive() -> dict[str, object]:
            await asyncio.Event().wait()  # it never disconnects either
            return {}

        answer = StreamedAnswer(
            endless(),
            media_type="text/event-stream",
            heartbeat=10,
            heartbeat_chunk=None,
            on_error=str,
            send_timeout=0.5,
        )
        # the client never reads and never leaves: only --send-timeout can end the answer
        # (wait_for guards against a hang, it is no timing assertion)
        await asyncio.wait_for(answer({"type": "http", "path": "/x"}, receive, send), 60)  # type: ignore[arg-type]
        assert closed.is_set()  # the answer was cancelled

    asyncio.run(run())
    assert sent == 4  # three sends went through, the fourth one blocked until the timeout dropped it
