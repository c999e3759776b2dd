"""Draining, as users see it: a real `ozfig serve` process, SIGTERM, and what clients get.

The fake DuckDuckGo hangs (mode "hang") so that a request is surely in flight for
`--search-timeout` seconds when the signal arrives; then the answer is generated as usual.
No test sleeps for a state: each waits for the event that makes it (a request in flight in
/metrics, /health saying draining, the log line that ends the drain grace).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.errors import DrainingError
from ozfig.llama.model import LlamaModel
from tests.support.processes import free_port, get_json, ozfig_command

ADMIN = "admin-drain-test-key"
USER = "user-drain-test-key"


def post(url: str, key: str | None = None) -> tuple[int, dict]:
    headers = {"X-Api-Key": key} if key else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method="POST", headers=headers), timeout=10
        ) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class Served:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            ozfig_command("serve", "--host", "127.0.0.1", "--port", str(self.port), *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.logged = threading.Condition()
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.output
            try:
                if get_json(self.base + "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)

    def _read_log(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.logged:
                self.lines.append(line)
                self.logged.notify_all()

    @property
    def output(self) -> str:
        with self.logged:
            return "".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        """Until a log line holds `text` (the event, as the server reports it)."""
        with self.logged:
            found = self.logged.wait_for(lambda: any(text in line for line in self.lines), timeout)
        assert found, f"no log line with {text!r}:\n{self.output[-3000:]}"

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def stream(self, path: str, request_id: str, into: list[str]) -> threading.Thread:
        def read() -> None:
            req = urllib.request.Request(self.base + path, headers={"X-Request-Id": request_id})
            with urllib.request.urlopen(req, timeout=60) as resp:
                into.extend(line.decode() for line in resp)

        thread = threading.Thread(target=read)
        thread.start()
        return thread

    def in_flight(self, n: int) -> bool:
        with urllib.request.urlopen(self.base + "/metrics", timeout=5) as resp:
            return f"ozfig_http_requests_in_flight {float(n)}" in resp.read().decode()

    def wait_in_flight(self, n: int) -> None:
        self.wait_until(lambda: self.in_flight(n), "the request did not start")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self.reader.join(10)
        return code, self.output


@pytest.fixture()
def args(model_path, ddg) -> list[str]:
    ddg.mode = "hang"
    return ["--model", str(model_path), "--search-url", ddg.url, "--ctx", "1024", "--max-tokens", "16",
            "--slots", "2", "--log-format", "json"]  # fmt: skip


def events(lines: list[str]) -> list[tuple[str, dict]]:
    """(event name, data) of an SSE body."""
    out, name = [], "message"
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and line != "data: [DONE]":
            out.append((name, json.loads(line[6:])))
            name = "message"
    return out


def test_sigterm_lets_a_running_stream_finish_and_refuses_new_work(args) -> None:
    server = Served(*args, "--search-timeout", "2", "--drain-timeout", "30")
    lines: list[str] = []
    reader = server.stream("/prompt/what%20is%20rust?stream=true", "drain-stream-1", lines)
    server.wait_in_flight(1)
    server.proc.send_signal(signal.SIGTERM)
    server.wait_until(lambda: get_json(server.base + "/health")[0] == 503, "/health never said draining")
    status, body = get_json(server.base + "/health")
    assert status == 503 and body == {"status": "draining", "reason": "draining"}
    assert post(server.base + "/admin/drain")[0] == 404  # no --admin-key: the admin routes are off
    req = urllib.request.Request(server.base + "/prompt/another", headers={"X-Request-Id": "late-1"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 503
    assert refused.value.headers["Retry-After"] and refused.value.headers["X-Request-Id"] == "late-1"
    assert json.loads(refused.value.read())["code"] == "draining"
    reader.join(60)
    code, output = server.finish()
    assert code == 0, output[-3000:]
    names = [name for name, _ in events(lines)]
    assert names[-1] == "done" and "token" in names and "error" not in names
    log = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(e["request_id"] == "drain-stream-1" and "web search" in e["message"] for e in log)
    assert any(e["request_id"] == "late-1" and " 503 " in e["message"] for e in log)
    assert "Traceback" not in output


def test_past_the_drain_timeout_streams_end_with_an_error_event_and_json_with_503(args) -> None:
    server = Served(*args, "--search-timeout", "3", "--drain-timeout", "0.5")
    lines: list[str] = []
    reader = server.stream("/prompt/what%20is%20rust?stream=true", "late-stream", lines)
    result: dict[str, object] = {}

    def ask_json() -> None:
        result["answer"] = get_json(server.base + "/prompt/json%20please", timeout=60)

    asker = threading.Thread(target=ask_json)
    asker.start()
    server.wait_in_flight(2)
    server.proc.send_signal(signal.SIGTERM)
    reader.join(60)
    asker.join(60)
    code, output = server.finish()
    assert code == 0, output[-3000:]
    last_name, last = events(lines)[-1]
    assert last_name == "error" and last["code"] == "draining", lines
    status, body = result["answer"]  # type: ignore[misc]
    assert status == 503 and body["code"] == "draining"
    assert "Traceback" not in output and " 500 " not in output


def test_during_the_drain_grace_new_requests_are_served_while_health_says_draining(args) -> None:
    """Behind a load balancer: it stops sending once /health is 503; what it sent until then is served."""
    server = Served(*args, "--search-timeout", "5", "--drain-grace", "3", "--drain-timeout", "30",
                    "--admin-key", ADMIN)  # fmt: skip
    assert post(server.base + "/admin/drain", ADMIN)[0] == 202
    assert get_json(server.base + "/health") == (503, {"status": "draining", "reason": "draining"})
    lines: list[str] = []  # its search waits 5 s: it runs past the grace and keeps the server up
    reader = server.stream("/prompt/still%20served?stream=true", "in-grace", lines)
    server.wait_in_flight(1)
    server.wait_for_log("drain grace over")  # the drain's own event: from now on, new requests are refused
    status, body = get_json(server.base + "/prompt/too%20late", timeout=10)
    assert status == 503 and body["code"] == "draining"
    reader.join(60)
    assert [name for name, _ in events(lines)][-1] == "done", lines
    code, output = server.finish()
    assert code == 0, output[-3000:]


def test_admin_drain_takes_the_admin_key_not_a_user_key_and_exits_zero(args) -> None:
    server = Served(*args, "--search-timeout", "1", "--api-key", USER, "--admin-key", ADMIN)
    status, body = post(server.base + "/admin/drain", USER)
    assert status == 403 and body["code"] == "admin_key_required"
    assert post(server.base + "/admin/drain")[0] == 401
    assert get_json(server.base + "/health")[0] == 200  # still serving
    status, body = post(server.base + "/admin/drain", ADMIN)
    assert status == 202 and body["status"] == "draining"
    code, output = server.finish()
    assert code == 0, output[-3000:]


def test_engine_abort_ends_a_generating_answer_with_draining(model_path) -> None:
    """The engine side of the drain timeout: answers being decoded, and those waiting, end with DrainingError."""

    async def run() -> None:
        model = LlamaModel(str(model_path), 0)
        engine = Engine(model, EngineConfig(slots=1, ctx=512, threads=2, max_waiting=4))
        try:
            tokens = model.tokenize("Once upon a time", add_special=True)
            long = Job(tokens, 400, SamplingParams(temperature=0.0, ignore_eos=True))
            async with engine.generate(long) as running, engine.generate(long) as waiting:
                pieces = 0
                async for _ in running:
                    pieces += 1
                    if pieces == 3:
                        engine.abort("the server is shutting down")
                        break
                with pytest.raises(DrainingError):
                    async for _ in running:
                        pass
                with pytest.raises(DrainingError):
                    await waiting.text()
                assert running.result is not None and running.result.reason == "aborted"
            with pytest.raises(DrainingError):
                engine.submit(long)
            assert engine.heartbeat_age() < 5
        finally:
            engine.close()
            model.close()

    asyncio.run(run())
