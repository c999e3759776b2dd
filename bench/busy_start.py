"""`--speculative auto` started on a busy machine, against `auto` started idle and `off`, in one run.

`auto` times decodes when it starts (`ozfig/engine/cost_probe.py`); a server that starts while the
machine is busy (servers starting side by side, a rolling restart) gets a timing several times too
slow. This starts three `ozfig serve` on the test model: `auto` on an idle machine, `auto` while
`--hogs` processes spin on the CPU (stopped once it is ready), and `off`; then asks each, one
request at a time, alternating, the `quote` and `free` questions of `spec_bench.py` through HTTP
(one streamed client). Prints the decode rates (medians), each server's proposed and accepted
tokens from /metrics, and the busy server's timings from its log.

    python bench/busy_start.py MODEL [--repeat 3] [--hogs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.spec_bench import KINDS, ozfig_command, task
from bench.sse_rate import streamed_rate, wait_ready

HERE = Path(__file__).resolve().parent


def serve(model: str, port: int, mode: str, threads: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = ozfig_command(model, port, mode, threads, 120, "info")  # info: the timings are logged
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=HERE.parent, stdout=subprocess.DEVNULL, stderr=out)


def drafted(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    rows = [line.split() for line in text.splitlines() if line.startswith("ozfig_draft")]
    return {name: float(value) for name, value in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="the GGUF file the three servers load")
    ap.add_argument("--repeat", type=int, default=3, help="questions of each kind per server (medians)")
    ap.add_argument("--hogs", type=int, default=3, help="spinning processes while the busy server starts")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads of each server")
    ap.add_argument("--port", type=int, default=18201, help="first of the three ports (127.0.0.1)")
    args = ap.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="ozfig-busy-start-"))
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        port = args.port
        proc = serve(args.model, port, "auto", args.threads, logs / "idle-start.log")
        wait_ready(port, proc, "/health")
        servers["auto, started idle"] = (port, proc)
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
        try:
            time.sleep(1.0)
            proc = serve(args.model, port + 1, "auto", args.threads, logs / "busy-start.log")
            wait_ready(port + 1, proc, "/health")
            servers["auto, started busy"] = (port + 1, proc)
        finally:
            for hog in hogs:
                hog.kill()
        time.sleep(1.0)
        proc = serve(args.model, port + 2, "off", args.threads, logs / "off.log")
        wait_ready(port + 2, proc, "/health")
        servers["off"] = (port + 2, proc)
        for p, _ in servers.values():  # warm-up
            streamed_rate(p, {"model": "m", "messages": task("free", 1000), "max_tokens": 8})
        found: dict[tuple[str, str], list[float]] = {}
        for run in range(args.repeat):
            for kind in KINDS:
                for name, (p, _) in servers.items():
                    messages = task(kind, 500 + run)
                    body = {"model": "m", "messages": messages, "max_tokens": 120, "temperature": 0}
                    found.setdefault((kind, name), []).append(streamed_rate(p, body)[0])
        for (kind, name), rates in found.items():
            rate, off = statistics.median(rates), statistics.median(found[(kind, "off")])
            row = {"task": kind, "server": name, "tok_s": round(rate, 1), "of_off": round(rate / off, 2)}
            print(json.dumps(row | {"runs": [round(r) for r in rates]}))
        for name, (p, _) in servers.items():
            print(json.dumps({"server": name} | drafted(p)))
        timings = [
            line.split(" [-]: ", 1)[-1]
            for line in (logs / "busy-start.log").read_text().splitlines()
            if "cost_probe" in line
        ]
        print(json.dumps({"busy server's timings": timings}, indent=1))
    finally:
        for _, proc in servers.values():
            proc.terminate()
        for _, proc in servers.values():
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
