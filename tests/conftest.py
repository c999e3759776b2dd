"""Shared fixtures: the real test model, local fakes of DuckDuckGo, SearXNG and web pages, and a served app."""

# llama_cpp first, as in the real entry point (see ozfig/cli.py)
import llama_cpp  # noqa: F401, I001

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ozfig.llama.model import LlamaModel
from server.app import create_app
from ozfig.chat_format import ChatFormatter
from server.settings import Settings
from tests.support.fake_duckduckgo import FakeDuckDuckGo
from tests.support.fake_searxng import FakeSearXNG
from tests.support.fake_web import FakeWeb
from tests.support.model_file import fetch_test_model


# fixtures that give a test a model to load: a test using any of them (directly or through
# another fixture) is marked `model`; `pytest -m "not model"` runs the model-free unit layer
MODEL_FIXTURES = frozenset({"model_path", "tiny"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def model_path() -> Path:
    return fetch_test_model()


@pytest.fixture(scope="module")
def model(model_path: Path) -> Iterator[LlamaModel]:
    """The test model loaded with llama.cpp, one per test module (a module may override it)."""
    m = LlamaModel(str(model_path))
    yield m
    m.close()


@pytest.fixture(scope="module")
def formatter(model: LlamaModel) -> ChatFormatter:
    """The chat formatter of `model`'s own template."""
    return ChatFormatter(model)


@pytest.fixture(scope="session")
def fake_ddg_server() -> Iterator[FakeDuckDuckGo]:
    fake = FakeDuckDuckGo().start()
    yield fake
    fake.stop()


@pytest.fixture()
def ddg(fake_ddg_server: FakeDuckDuckGo) -> Iterator[FakeDuckDuckGo]:
    fake_ddg_server.reset()
    yield fake_ddg_server
    fake_ddg_server.reset()


@pytest.fixture(scope="session")
def fake_web_server() -> Iterator[FakeWeb]:
    fake = FakeWeb().start()
    yield fake
    fake.stop()


@pytest.fixture()
def web(fake_web_server: FakeWeb) -> Iterator[FakeWeb]:
    fake_web_server.requests.clear()
    yield fake_web_server


@pytest.fixture(scope="session")
def fake_searxng_server() -> Iterator[FakeSearXNG]:
    fake = FakeSearXNG().start()
    yield fake
    fake.stop()


@pytest.fixture()
def searxng(fake_searxng_server: FakeSearXNG) -> Iterator[FakeSearXNG]:
    fake_searxng_server.mode = "results"
    fake_searxng_server.queries.clear()
    fake_searxng_server.results.clear()
    yield fake_searxng_server


def make_settings(model_path: Path, search_url: str, **overrides: object) -> Settings:
    """Test settings: the fake DuckDuckGo at `search_url` (both endpoints), pages from 127.0.0.2 only."""
    base: dict[str, object] = dict(
        model=str(model_path),
        search_url=search_url,
        search_html_url=search_url.rstrip("/") + "/html/",
        fetch_allow=("127.0.0.2/32",),
        web_context_tokens=512,
        port=0,
        ctx=1024,
        max_tokens=24,
        temperature=0.0,
        slots=4,
        threads=2,
        search_timeout=1.0,
        search_cache_size=0,
        search_cooldown=0.0,  # the failure-mode tests send 202s: later tests must still search
        # answers that do not depend on what ran before (tests compare repeated requests); the
        # default `on` is tested where reuse is the subject (test_conversations, test_prompt_reuse)
        prompt_cache="exact",
        allowed_hosts="testserver,localhost,127.0.0.1",  # TestClient calls itself testserver
    )
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def wait_ready(client: TestClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/health")
        if r.status_code == 200:
            return
        if r.json().get("status") == "failed":
            raise AssertionError(f"model failed to load: {r.json()}")
        time.sleep(0.05)
    raise AssertionError("model did not load in time")


@pytest.fixture(scope="session")
def settings(model_path: Path, fake_ddg_server: FakeDuckDuckGo) -> Settings:
    return make_settings(model_path, fake_ddg_server.url)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        yield c
