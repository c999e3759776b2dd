"""GET /metrics: Prometheus text that prometheus-client's parser and promtool accept, whose
values move as requests run (the real test model, the fake DuckDuckGo)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from server.app import create_app
from tests.conftest import make_settings, wait_ready


def scrape(client: TestClient) -> dict[str, float]:
    """Every sample, keyed `name{label="value",...}` (labels sorted), from GET /metrics."""
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return samples


@pytest.fixture()
def metered(model_path, fake_ddg_server):
    settings = make_settings(model_path, fake_ddg_server.url, slots=1, queue=1, max_tokens=48)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        yield c


def test_metrics_move_as_requests_run(metered, ddg) -> None:
    before = scrape(metered)
    assert before["ozfig_slots"] == 1 and before["ozfig_ready"] == 1
    assert before["ozfig_requests_running"] == 0 and before["ozfig_requests_waiting"] == 0

    assert metered.get("/prompt/what%20is%20rust").status_code == 200
    assert (
        metered.get("/prompt/what%20is%20rust").status_code == 200
    )  # same prompt: reused prefix? (batch-aligned)
    ddg.mode = "202"
    assert metered.get("/prompt/rate%20limited").status_code == 200
    ddg.mode = "hang"
    after = scrape(metered)

    assert after["ozfig_generation_tokens_total"] > before["ozfig_generation_tokens_total"]
    assert after["ozfig_prompt_tokens_total"] > before["ozfig_prompt_tokens_total"]
    assert after["ozfig_engine_steps_total"] > before["ozfig_engine_steps_total"]
    assert (
        after["ozfig_engine_step_overhead_seconds_total"] > before["ozfig_engine_step_overhead_seconds_total"]
    )
    assert 0 <= after["ozfig_draft_tokens_accepted_total"] <= after["ozfig_draft_tokens_total"]
    finished = sum(v for k, v in after.items() if k.startswith("ozfig_requests_finished_total{"))
    assert finished - sum(v for k, v in before.items() if k.startswith("ozfig_requests_finished_total{")) == 3
    for histogram in (
        "ozfig_queue_time_seconds",
        "ozfig_time_to_first_token_seconds",
        "ozfig_e2e_request_latency_seconds",
    ):
        assert after[histogram + "_count"] - before.get(histogram + "_count", 0) == 3, histogram
    assert (
        after["ozfig_inter_token_latency_seconds_count"] > before["ozfig_inter_token_latency_seconds_count"]
    )
    searches = {k: v - before.get(k, 0) for k, v in after.items() if k.startswith("ozfig_web_search_total{")}
    assert sum(searches.values()) == 3
    # each search counted once, by outcome (ok, empty, timeout on a loaded machine, ...)
    assert set(searches) <= {
        f'ozfig_web_search_total{{outcome="{o}"}}'
        for o in ("ok", "empty", "timeout", "rate_limited", "error")
    }
    assert after["ozfig_web_search_seconds_count"] - before.get("ozfig_web_search_seconds_count", 0) == 3


def test_running_waiting_and_rejections_while_busy(metered, ddg) -> None:
    """One slot and a queue of one: an answer holds the slot (generating past end-of-text), a
    second request waits, a third is refused (503); /metrics says so."""
    ddg.mode = "empty"
    engine, formatter = metered.app.state.runtime.require_engine()
    tokens = formatter.tokens([{"role": "user", "content": "Tell a long story about a fig tree."}])
    long = Job(tokens, 900, SamplingParams(temperature=0.0, ignore_eos=True))
    generating, release = threading.Event(), threading.Event()

    async def hold() -> None:
        async with engine.generate(long) as gen:
            async for _ in gen:
                generating.set()
                while not release.is_set():
                    await asyncio.sleep(0.01)
                break  # leaving the block cancels the answer

    holder = threading.Thread(target=metered.portal.call, args=(hold,))
    holder.start()
    try:
        assert generating.wait(120)
        waiter = threading.Thread(target=metered.get, args=("/prompt/second",))
        waiter.start()
        samples: dict[str, float] = {}
        for _ in range(500):
            samples = scrape(metered)
            if samples["ozfig_requests_waiting"] >= 1:
                break
            time.sleep(0.02)
        assert samples["ozfig_requests_running"] == 1
        assert samples["ozfig_requests_waiting"] == 1
        assert 0 < samples["ozfig_kv_cache_usage_ratio"] <= 1
        refused = metered.get("/prompt/third")
        assert refused.status_code == 503 and refused.json()["code"] == "overloaded"
        assert refused.headers["retry-after"]
        samples = scrape(metered)
        assert samples['ozfig_requests_rejected_total{code="overloaded"}'] == 1
        assert samples['ozfig_http_errors_total{code="overloaded",status="503"}'] == 1
    finally:
        release.set()
        holder.join(60)
    waiter.join(120)
    done = scrape(metered)
    assert done["ozfig_requests_running"] == 0 and done["ozfig_requests_waiting"] == 0
    assert done['ozfig_requests_finished_total{reason="cancelled"}'] >= 1
    assert done["ozfig_requests_cancelled_total"] >= 1


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_promtool_accepts_the_exposition(metered) -> None:
    metered.get("/prompt/hello")
    text = metered.get("/metrics").text
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # plain text, nothing binary: printable lines, each ending in a newline, every family typed
    assert text.endswith("\n") and all(line.isprintable() for line in text.splitlines())
    assert "# TYPE ozfig_requests_waiting gauge" in text
