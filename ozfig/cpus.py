"""How many CPUs this process may really use: its affinity mask and its cgroup's CPU quota.

`os.cpu_count()` counts every logical CPU of the host. A container limited to 4 CPUs on a
64-core node sees 64 there; llama.cpp started with 64 threads on 4 CPUs of quota spends
most of its time throttled, many times slower than with 4. `available_cpus` takes the
smallest of:
- the affinity mask (`os.sched_getaffinity`: `taskset`, `docker run --cpuset-cpus`, a
  Kubernetes static CPU manager);
- the CPU quota of this process's cgroup and of every cgroup above it: cgroup v2's
  `cpu.max` ("200000 100000": 2 CPUs; "max 100000": none), cgroup v1's
  `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: none); a fraction is rounded down
  (2.5 CPUs -> 2 threads), and the count is never below 1.

The cgroup root and `/proc/self/cgroup` are parameters, so that tests point them at files
they write.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class CpuCount:
    """`count` CPUs, and where that number came from: `source` is a short stable word
    (affinity, cgroup, cpu_count), `detail` a sentence for the log."""

    count: int
    source: str
    detail: str


@dataclass(frozen=True)
class Quota:
    cpus: float  # quota / period
    where: str  # the file, and what it said


def affinity_mask() -> set[int] | None:
    """The CPUs this process may be scheduled on; None where the platform cannot tell."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2's `cpu.max` ("QUOTA PERIOD", QUOTA `max` for none) in CPUs; None: no limit."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    return _ratio(parts[0], parts[1])


def parse_cfs(quota: str, period: str) -> float | None:
    """cgroup v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us` in CPUs; None: no limit (-1)."""
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return q / p


def cgroup_dirs(root: Path, proc_cgroup: Path) -> list[tuple[int, Path]]:
    """(cgroup version, folder) for this process's cgroup and every one above it, innermost first."""
    found: list[tuple[int, Path]] = []
    text = _read(proc_cgroup) or ""
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if controllers == "":
            found += [(2, d) for d in _up(root, path)]
        elif "cpu" in controllers.split(","):
            for mount in dict.fromkeys((root / controllers, root / "cpu,cpuacct", root / "cpu")):
                found += [(1, d) for d in _up(mount, path)]
    if not found:  # no /proc/self/cgroup: the roots, as a container with its own namespace sees them
        found = [(2, root), (1, root / "cpu,cpuacct"), (1, root / "cpu")]
    return found


def _up(mount: Path, path: str) -> list[Path]:
    """`mount/path`, then each folder above it up to `mount` itself."""
    parts = [p for p in path.split("/") if p and p not in (".", "..")]
    return [mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> Quota | None:
    """The tightest CPU quota over this process's cgroups; None when none is set."""
    tightest: Quota | None = None
    for version, folder in cgroup_dirs(root, proc_cgroup):
        if version == 2:
            text = _read(folder / "cpu.max")
            cpus = parse_cpu_max(text) if text is not None else None
            where = f"cgroup v2 {folder / 'cpu.max'} = {text!r}"
        else:
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            cpus = parse_cfs(quota, period) if quota is not None and period is not None else None
            where = f"cgroup v1 {folder}/cpu.cfs_quota_us = {quota} / cpu.cfs_period_us = {period}"
        if cpus is not None and (tightest is None or cpus < tightest.cpus):
            tightest = Quota(cpus, where)
    return tightest


def available_cpus(
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_SELF_CGROUP,
    affinity: Callable[[], set[int] | None] = affinity_mask,
    cpu_count: Callable[[], int | None] = os.cpu_count,
) -> CpuCount:
    """The CPUs this process may run on: the affinity mask, capped by the cgroup quota; at least 1."""
    mask = affinity()
    if mask:
        count, source, detail = len(mask), "affinity", f"affinity mask of {len(mask)} CPUs"
    else:
        count = cpu_count() or 1
        source, detail = "cpu_count", f"{count} CPUs on the host (no affinity mask)"
    quota = cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        limit = max(1, math.floor(quota.cpus))
        detail += f"; CPU quota {quota.cpus:g} CPUs ({quota.where})"
        if limit < count:
            count, source = limit, "cgroup"
    return CpuCount(max(1, count), source, detail)
