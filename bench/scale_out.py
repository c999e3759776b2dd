"""Throughput of 1 vs 3 `ozfig serve` replicas behind haproxy (deploy/compose/haproxy.cfg), on loopback.

    python -m bench.scale_out [--clients 24] [--per-client 4] [--threads 1] [--slots 4]

Each replica gets the same --threads; on a 2-core machine three replicas share the same two
cores as one, so the figure to expect there is flat (the point of replicas is more machines).
Prints one JSON line per configuration.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse

from tests.support.cluster import Cluster, Load
from tests.support.fake_duckduckgo import FakeDuckDuckGo
from tests.support.model_file import fetch_test_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    fake = FakeDuckDuckGo().start()
    try:
        for n in args.replicas:
            replica_args = [
                "--model", str(fetch_test_model()), "--search-url", fake.url, "--ctx", "1024",
                "--max-tokens", str(args.max_tokens), "--slots", str(args.slots), "--threads", str(args.threads),
                "--temperature", "0",
            ]  # fmt: skip
            with Cluster(n, replica_args) as cluster:
                url = cluster.haproxy.base + "/prompt/" + urllib.parse.quote("what is rust")
                Load(url, n * args.slots, per_client=1).start().join()  # warm every replica
                before = [r.served() for r in cluster.replicas]
                load = Load(url, args.clients, per_client=args.per_client).start().join()
                shares = [r.served() - b for r, b in zip(cluster.replicas, before, strict=True)]
            done = load.outcomes["ok"]
            print(
                json.dumps(
                    {
                        "replicas": n,
                        "clients": args.clients,
                        "requests_ok": done,
                        "failed": load.outcomes["failed"],
                        "seconds": round(load.elapsed, 2),
                        "requests_per_second": round(done / load.elapsed, 3),
                        "shares": shares,
                    }
                ),
                flush=True,
            )
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
