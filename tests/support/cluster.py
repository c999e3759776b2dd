"""Several real `ozfig serve` replicas on loopback behind Debian's haproxy, and a load of clients.

The HAProxy configuration is deploy/compose/haproxy.cfg itself (what users run), with only
its addresses changed: it binds 127.0.0.1 on a free port and lists the replicas' loopback
ports instead of compose's service name, and gets a stats socket the tests read.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import free_port, get_json, ozfig_command

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "compose" / "haproxy.cfg"


def haproxy_available() -> bool:
    return shutil.which("haproxy") is not None


class Replica:
    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ozfig_command("serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode}: {self.log_path.read_text()}"
                )
            try:
                if get_json(self.base + "/health", timeout=2)[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not become ready")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def served(self) -> int:
        """Requests this replica's engine finished (from its /metrics)."""
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return int(
            sum(float(v) for v in re.findall(r"^ozfig_requests_finished_total\{[^}]*\} (\S+)$", text, re.M))
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)


def haproxy_config(port: int, replicas: list[Replica], stats_socket: Path) -> str:
    """deploy/compose/haproxy.cfg with loopback addresses (the rest as users run it)."""
    text = HAPROXY_CFG.read_text()
    text = re.sub(r"(?m)^global\n", f"global\n    stats socket {stats_socket} mode 600 level admin\n", text)
    text = re.sub(r"(?m)^resolvers docker\n(    .*\n)+", "", text)
    text = re.sub(r"(?m)^    bind :8080$", f"    bind 127.0.0.1:{port}", text)
    servers = "".join(f"    server {r.name} 127.0.0.1:{r.port} check\n" for r in replicas)
    text, n = re.subn(r"(?m)^    server-template .*\n", servers, text)
    assert n == 1, "deploy/compose/haproxy.cfg has no server-template line"
    return text


def check_settings() -> tuple[float, int]:
    """(check interval in seconds, failed checks before a server leaves rotation) from the config."""
    match = re.search(
        r"(?m)^    default-server .*\binter (\d+)(ms|s)\b.*\bfall (\d+)", HAPROXY_CFG.read_text()
    )
    assert match, "default-server line with inter and fall"
    inter = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    return inter, int(match.group(3))


class HAProxy:
    def __init__(self, replicas: list[Replica], work: Path) -> None:
        self.port = free_port()
        self.socket_path = work / "haproxy.sock"
        self.cfg = work / "haproxy.cfg"
        self.cfg.write_text(haproxy_config(self.port, replicas, self.socket_path))
        self.log_path = work / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run(["haproxy", "-c", "-f", str(self.cfg)], check=True, capture_output=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.cfg)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while not self.socket_path.exists() or not self.statuses():
            if time.monotonic() > deadline:
                raise AssertionError("haproxy did not start: " + self.log_path.read_text())
            time.sleep(0.1)

    def statuses(self) -> dict[str, str]:
        """Server name -> UP / DOWN / ... from the stats socket."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(self.socket_path))
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        return {
            r["svname"]: r["status"]
            for r in rows
            if r["pxname"] == "ozfig" and r["svname"] not in ("BACKEND",)
        }

    def wait_status(self, name: str, status: str, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.statuses().get(name, "").startswith(status):
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"haproxy did not see {name} {status} in {timeout}s: {self.statuses()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@dataclass
class Load:
    """`clients` threads asking `url` in a loop until stopped (or `per_client` times each)."""

    url: str
    clients: int
    per_client: int | None = None
    timeout: float = 600.0  # a slow answer on a busy 2-core machine is slow, not lost
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, n: int) -> None:
        done = 0
        while not self._stop.is_set() and (self.per_client is None or done < self.per_client):
            request = urllib.request.Request(self.url, headers={"X-Request-Id": f"load-{n}-{done}"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    body = resp.read()
                    ok = resp.status == 200 and b'"message"' in body
                    outcome = "ok" if ok else f"bad body {resp.status}"
            except urllib.error.HTTPError as err:
                outcome = f"HTTP {err.code}: {err.read()[:200]!r}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.outcomes["ok" if outcome == "ok" else "failed"] += 1
                if outcome != "ok":
                    self.failures.append(outcome)
            done += 1

    def start(self) -> Load:
        self._started = time.monotonic()
        for n in range(self.clients):
            t = threading.Thread(target=self._client, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> Load:
        self._stop.set()
        return self.join()

    def join(self) -> Load:
        for t in self._threads:
            t.join(self.timeout + 30)
        self.elapsed = time.monotonic() - self._started
        return self


class Cluster:
    """`n` replicas behind haproxy; use as a context manager."""

    def __init__(self, n: int, replica_args: list[str]) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="ozfig-cluster-"))
        self.replicas = [Replica(f"r{i + 1}", replica_args, self.work) for i in range(n)]
        self.haproxy = HAProxy(self.replicas, self.work)

    def __enter__(self) -> Cluster:
        try:
            for r in self.replicas:
                r.start()
            for r in self.replicas:
                r.wait_ready()
            self.haproxy.start()
            inter, _ = check_settings()
            for r in self.replicas:
                self.haproxy.wait_status(r.name, "UP", timeout=inter * 4 + 10)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.haproxy.stop()
        for r in self.replicas:
            r.stop()
        if os.environ.get("OZFIG_KEEP_CLUSTER_LOGS") is None:
            shutil.rmtree(self.work, ignore_errors=True)
