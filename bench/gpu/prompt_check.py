#!/usr/bin/env python3
"""`ozfig serve` as a process, asked GET /prompt/{question} with web search on local fakes.

The fake DuckDuckGo of tests/support answers the retrieval corpus' questions with results whose
pages FakeWeb serves on 127.0.0.2, so every answer is prompted with a full web context, as on
the real web, and nothing leaves the machine. One JSON line per request: HTTP status, seconds to
the first `token` event, seconds to the end, the answer's length (characters, tokens), prompt
tokens, sources and finish reason; then one line with the server's "ready" log line.

    python bench/gpu/prompt_check.py MODEL.gguf [--gpu-layers 99] [--questions 3] [--max-tokens 128]
        [--threads 0] [--log serve.log] [--serve-flags "--ctx 8192 ..."]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.fake_duckduckgo import FakeDuckDuckGo  # noqa: E402
from tests.support.fake_web import FakeWeb  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.retrieval_corpus import questions  # noqa: E402


def fixtures() -> tuple[FakeDuckDuckGo, FakeWeb]:
    ddg, web = FakeDuckDuckGo().start(), FakeWeb().start()
    ddg.mode = "empty"  # no Instant Answer: the results page and the pages carry the context
    for q in questions():
        ddg.results[q.query] = [(t, web.url(path), s) for t, path, s in q.results]
    return ddg, web


def wait_ready(proc: subprocess.Popen[bytes], base: str, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"ozfig serve exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"ozfig serve was not ready after {timeout:.0f} s")


def streamed(base: str, query: str) -> dict[str, Any]:
    """One `GET /prompt/{query}?stream=true`, read event by event."""
    row: dict[str, Any] = {"query": query, "stream": True}
    start = time.perf_counter()
    event, text = "", []
    try:
        with urllib.request.urlopen(f"{base}/prompt/{quote(query)}?stream=true", timeout=600) as r:
            row["status"] = r.status
            for raw in r:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("event: "):
                    event = line[7:]
                    if event == "token" and "ttft_s" not in row:
                        row["ttft_s"] = round(time.perf_counter() - start, 3)
                elif line.startswith("data: ") and event == "token":
                    text.append(json.loads(line[6:])["text"])
                elif line.startswith("data: ") and event in ("done", "error"):
                    data = json.loads(line[6:])
                    row["event"] = event
                    if event == "error":
                        row["error"] = data
                    else:
                        row["answer_chars"] = len(data["message"])
                        row["streamed_chars"] = len("".join(text))
                        row["completion_tokens"] = data["usage"]["completion_tokens"]
                        row["prompt_tokens"] = data["usage"]["prompt_tokens"]
                        row["sources"] = len(data["sources"])
                        row["finish_reason"] = data.get("finish_reason")
                    break
    except urllib.error.HTTPError as err:
        row["status"] = err.code
        row["error"] = err.read()[:300].decode("utf-8", "replace")
    row["total_s"] = round(time.perf_counter() - start, 3)
    return row


def plain(base: str, query: str) -> dict[str, Any]:
    """One `GET /prompt/{query}`: the JSON form."""
    row: dict[str, Any] = {"query": query, "stream": False}
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{base}/prompt/{quote(query)}", timeout=600) as r:
            row["status"] = r.status
            data = json.loads(r.read())
            row["answer_chars"] = len(data["message"])
            row["completion_tokens"] = data["usage"]["completion_tokens"]
            row["prompt_tokens"] = data["usage"]["prompt_tokens"]
            row["sources"] = len(data["sources"])
    except urllib.error.HTTPError as err:
        row["status"] = err.code
        row["error"] = err.read()[:300].decode("utf-8", "replace")
    row["total_s"] = round(time.perf_counter() - start, 3)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--gpu-layers", default="-1")
    ap.add_argument("--questions", type=int, default=3)
    ap.add_argument("--max-tokens", default="128")
    ap.add_argument("--ready-timeout", type=float, default=180.0)
    ap.add_argument("--log", default="prompt-serve.log", help="where the server's output goes")
    ap.add_argument("--threads", default="0")
    ap.add_argument("--serve-flags", default="", help="more `ozfig serve` flags, in one string")
    args = ap.parse_args()
    ddg, web = fixtures()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "ozfig", "serve", "--model", args.model, "--host", "127.0.0.1",
        "--port", str(port), "--gpu-layers", args.gpu_layers, "--max-tokens", args.max_tokens,
        "--temperature", "0", "--search-url", ddg.url, "--search-html-url", ddg.html_url,
        "--fetch-allow", "127.0.0.2/32", "--search-timeout", "30", "--threads", args.threads,
        "--log-level", "info", *shlex.split(args.serve_flags),
    ]  # fmt: skip
    with open(args.log, "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        print(json.dumps({"ready_s": round(wait_ready(proc, base, args.ready_timeout), 1)}), flush=True)
        qs = [q.query for q in questions()][: args.questions]
        for q in qs:
            print(json.dumps(streamed(base, q)), flush=True)
        print(json.dumps(plain(base, qs[0])), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        ddg.stop()
        web.stop()
        ready = [
            line for line in Path(args.log).read_text(errors="replace").splitlines() if " ready: " in line
        ]
        print(json.dumps({"server": ready[-1].split(" ready: ", 1)[1] if ready else None}), flush=True)


if __name__ == "__main__":
    main()
