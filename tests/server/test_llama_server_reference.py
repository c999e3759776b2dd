"""The reference llama-server helpers: a binary that cannot run here is told apart from a failure.

Model-free: fake binaries stand in for llama-server (tests/support/llama_server.py and
tests/support/llama_server_build.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.llama_server import LlamaServerCrashed, llama_server
from tests.support.llama_server_build import runs_here


def fake(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_a_reference_killed_by_a_signal_while_starting_is_a_crash_not_a_failure(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LLAMA_SERVER_BIN", str(fake(tmp_path, "llama-server", "kill -ILL $$")))
    with pytest.raises(LlamaServerCrashed, match="killed by signal 4"), llama_server(tmp_path / "model.gguf"):
        pass


def test_a_reference_that_exits_with_an_error_is_a_failure(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LLAMA_SERVER_BIN", str(fake(tmp_path, "llama-server", "echo 'no such model' >&2; exit 1")))
    with pytest.raises(AssertionError, match="exited with 1: no such model"), llama_server(tmp_path / "model.gguf"):
        pass


def test_only_a_binary_that_runs_here_is_kept(tmp_path) -> None:
    assert runs_here(fake(tmp_path, "ok", "echo version: 1; exit 0"))
    assert not runs_here(fake(tmp_path, "foreign", "kill -ILL $$"))
    assert not runs_here(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.write_text("not executable")
    os.chmod(plain, 0o644)
    assert not runs_here(plain)
