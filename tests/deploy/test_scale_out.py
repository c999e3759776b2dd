"""Three real replicas behind Debian's haproxy (deploy/compose/haproxy.cfg), 24 clients, on loopback.

- every replica serves a share of the load;
- a rolling restart (SIGTERM, wait for exit 0, start again, wait until back in rotation; one
  replica at a time) under load loses no request;
- a replica killed with SIGKILL loses at most the requests it was running (its slots), and
  leaves rotation within haproxy's check interval x fall.
"""

from __future__ import annotations

import signal
import time
import urllib.parse

import pytest
import yaml

from tests.support.cluster import HAPROXY_CFG, Cluster, Load, check_settings, haproxy_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not haproxy_available(), reason="haproxy is not installed (apt-get install haproxy)"),
]

CLIENTS = 24
COMPOSE_FILE = HAPROXY_CFG.parent / "docker-compose.yml"
SLOTS = 4  # = maxconn per server in deploy/compose/haproxy.cfg
# as deploy/compose/docker-compose.yml runs the replicas (> inter x fall: test_manifests.py)
DRAIN_GRACE = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["ozfig"]["environment"][
    "OZFIG_DRAIN_GRACE"
]


@pytest.fixture(scope="module")
def cluster(model_path, fake_ddg_server):  # one cluster for the module: the SIGKILL test goes last
    args = [
        "--model", str(model_path), "--search-url", fake_ddg_server.url, "--ctx", "1024", "--max-tokens", "12",
        "--slots", str(SLOTS), "--threads", "1", "--temperature", "0", "--drain-timeout", "120",
        "--drain-grace", str(DRAIN_GRACE),
    ]  # fmt: skip
    with Cluster(3, args) as c:
        yield c


def prompt_url(cluster: Cluster) -> str:
    return cluster.haproxy.base + "/prompt/" + urllib.parse.quote("what is rust")


def test_every_replica_serves_a_share(cluster) -> None:
    before = [r.served() for r in cluster.replicas]
    load = Load(prompt_url(cluster), CLIENTS, per_client=3).start().join()
    assert load.outcomes["ok"] == CLIENTS * 3, load.failures[:5]
    shares = [r.served() - b for r, b in zip(cluster.replicas, before, strict=True)]
    assert sum(shares) == CLIENTS * 3
    assert all(share > 0 for share in shares), shares


def test_rolling_restart_under_load_loses_nothing(cluster) -> None:
    inter, _ = check_settings()
    load = Load(prompt_url(cluster), CLIENTS).start()
    try:
        time.sleep(2)
        for replica in cluster.replicas:
            replica.signal(signal.SIGTERM)
            assert replica.wait_exit(180) == 0, replica.log_path.read_text()[-2000:]
            replica.start()
            replica.wait_ready()
            cluster.haproxy.wait_status(replica.name, "UP", timeout=inter * 4 + 10)
            time.sleep(1)
    finally:
        load.stop()
    assert load.outcomes["ok"] >= CLIENTS, load.outcomes
    assert load.outcomes["failed"] == 0, load.failures[:5]


def test_sigkill_loses_only_in_flight_and_leaves_rotation(cluster) -> None:
    inter, fall = check_settings()
    load = Load(prompt_url(cluster), CLIENTS).start()
    try:
        time.sleep(2)
        victim = cluster.replicas[0]
        victim.signal(signal.SIGKILL)
        victim.wait_exit(10)
        left = cluster.haproxy.wait_status(victim.name, "DOWN", timeout=inter * (fall + 1) + 2)
        time.sleep(2)
    finally:
        load.stop()
    assert left <= inter * (fall + 1), left
    assert load.outcomes["ok"] + load.outcomes["failed"] >= CLIENTS, load.outcomes  # every client got answers
    assert load.outcomes["failed"] <= SLOTS, load.failures  # at most what the victim was running
