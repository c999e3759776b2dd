"""Servers and decode rates of streamed answers, for the benchmarks that compare them (spec_bench, stream_rate)."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import urllib.request


def rate(times: list[float], tokens: int) -> float:
    """Tokens per second from the first answer piece to the last: (tokens - 1) / span."""
    span = times[-1] - times[0] if times else 0.0
    return (tokens - 1) / span if span > 0 and tokens > 1 else 0.0


def streamed_rate(port: int, body: dict[str, object], timeout: float = 600) -> tuple[float, int]:
    """POST `body` (streamed, with usage) to /v1/chat/completions on 127.0.0.1:`port`: the decode
    rate seen by the client and the completion tokens."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    times: list[float] = []
    tokens = 0
    while line := resp.readline():
        if not line.startswith(b"data: {"):
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
            times.append(time.perf_counter())
    conn.close()
    return rate(times, tokens), tokens


def wait_ready(port: int, proc: subprocess.Popen[bytes], path: str) -> None:
    for _ in range(1200):
        if proc.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not become ready")
