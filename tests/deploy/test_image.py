"""The CPU image, built for real and answering /prompt with the test model mounted.

Runs when OZFIG_IMAGE_TEST=1 (the image step of .ci/run sets it, after starting dockerd and
making the Debian base image with .ci/docker-env): Docker's classic builder, `--network host`
for the build and the run (these machines have no container network).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.support.processes import free_port, get_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("OZFIG_IMAGE_TEST") != "1", reason="set OZFIG_IMAGE_TEST=1 (.ci/run's image step)"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
IMAGE = "ozfig:ci"
BASE = os.environ.get("OZFIG_BASE_IMAGE", "ozfig-base:bookworm")


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    return subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=check, env=env
    )


@pytest.fixture(scope="module")
def image() -> str:
    proc = docker(
        "build", "--network", "host", "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(ROOT),
        timeout=1800, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return IMAGE


def test_image_shape(image) -> None:
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "1000"
    assert "/data/hf" in config["Volumes"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "8080/tcp" in config["ExposedPorts"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["HF_HOME"] == "/data/hf" and env["OZFIG_HOST"] == "0.0.0.0"
    # no compilers in the image: they stay in the build stage
    proc = docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "command -v gcc cc cmake || true",
    )
    assert proc.stdout.strip() == ""


def test_image_answers_prompt_with_the_mounted_model(image, model_path, ddg) -> None:
    port = free_port()
    name = f"ozfig-ci-{port}"
    docker(
        "run", "-d", "--name", name, "--network", "host",
        "-v", f"{model_path}:/models/m.gguf:ro",
        "-e", "OZFIG_MODEL=/models/m.gguf", "-e", f"OZFIG_PORT={port}", "-e", "OZFIG_HOST=127.0.0.1",
        "-e", f"OZFIG_SEARCH_URL={ddg.url}", "-e", "OZFIG_CTX=1024", "-e", "OZFIG_MAX_TOKENS=16",
        "-e", "OZFIG_SLOTS=2", "-e", "OZFIG_THREADS=2",
        image,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if get_json(base + "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            state = json.loads(docker("inspect", name).stdout)[0]["State"]
            assert state["Running"], docker("logs", name, check=False).stdout[-3000:]
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr[-3000:]
            time.sleep(0.5)
        status, body = get_json(base + "/prompt/" + urllib.parse.quote("what is rust"))
        assert status == 200 and body["message"].strip()
        assert body["sources"][0]["url"] == "https://fake.example/wiki/abstract"
        assert docker("exec", name, "id", "-u").stdout.strip() == "1000"
        # the image's own HEALTHCHECK command passes against the running server
        test = json.loads(docker("inspect", name).stdout)[0]["Config"]["Healthcheck"]["Test"]
        assert docker("exec", name, *test[1:], check=False).returncode == 0
        # docker stop sends SIGTERM: the server drains and exits 0
        docker("stop", "-t", "60", name, timeout=90)
        assert json.loads(docker("inspect", name).stdout)[0]["State"]["ExitCode"] == 0
    finally:
        docker("rm", "-f", name, check=False)
