"""Run `ozfig` as a real process, on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ozfig_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ozfig", *args]


def get_json(url: str, timeout: float = 60.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None, ready_timeout: float = 120.0) -> Iterator[str]:
    """Start `ozfig serve` with ARGS on a free port; yield its base URL once /health is 200.

    With --prompt-cache exact unless ARGS or `env` say otherwise: tests compare repeated requests,
    whose answers must not depend on what ran before (the default `on` is tested where it is the subject).
    """
    port = free_port()
    proc = subprocess.Popen(
        ozfig_command("serve", "--host", "127.0.0.1", "--port", str(port), *args),
        env={"OZFIG_PROMPT_CACHE": "exact", **os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"ozfig serve exited with {proc.returncode}:\n{proc.stdout.read() if proc.stdout else ''}"
                )
            try:
                status, _ = get_json(base + "/health", timeout=2)
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("ozfig serve did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
