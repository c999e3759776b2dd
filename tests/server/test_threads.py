"""`--threads 0` in a container limited to 2 CPUs (a cgroup file written here) starts 2 threads."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.testclient import TestClient

from ozfig.cpus import available_cpus
from server.app import create_app
from server.runtime import Runtime, decode_threads
from server.settings import Settings
from tests.conftest import make_settings, wait_ready


def container(tmp_path: Path, cpu_max: str) -> tuple[Path, Path]:
    """A cgroup v2 root whose cpu.max is `cpu_max`, and a /proc/self/cgroup that points at it."""
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cpu.max").write_text(cpu_max + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/\n")
    return root, proc


def test_a_container_limited_to_2_cpus_starts_2_threads(
    model_path, fake_ddg_server, tmp_path, caplog
) -> None:
    root, proc = container(tmp_path, "200000 100000")
    settings = make_settings(model_path, fake_ddg_server.url, ctx=256, slots=1, threads=0)
    runtime = Runtime.from_settings(settings)
    runtime.cpus = lambda: available_cpus(root, proc, affinity=lambda: set(range(64)))
    with (
        caplog.at_level(logging.INFO, logger="server.runtime"),
        TestClient(create_app(settings, runtime)) as c,
    ):
        wait_ready(c)
        health = c.get("/health").json()
        assert (health["threads"], health["threads_from"]) == (2, "cgroup")
        assert runtime.engine is not None and runtime.engine.config.threads == 2
    started = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decoding threads:")]
    assert len(started) == 1 and started[0].startswith("decoding threads: 2 (")
    assert "affinity mask of 64 CPUs" in started[0] and "cpu.max" in started[0]


def test_the_setting_wins_and_zero_asks_the_cpus(tmp_path) -> None:
    root, proc = container(tmp_path, "300000 100000")
    cpus = lambda: available_cpus(root, proc, affinity=lambda: set(range(8)))  # noqa: E731
    assert decode_threads(Settings(threads=5), cpus).count == 5
    assert decode_threads(Settings(threads=5), cpus).source == "setting"
    got = decode_threads(Settings(threads=0), cpus)
    assert (got.count, got.source) == (3, "cgroup")
