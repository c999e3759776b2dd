"""The CPUs this process may run on: an affinity mask and cgroup quota files written by the test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ozfig.cpus import available_cpus, cgroup_quota, parse_cfs, parse_cpu_max


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def v2(tmp_path: Path, cpu_max: str | None, cgroup: str = "/") -> tuple[Path, Path]:
    """A cgroup v2 root (with `cpu.max` in this process's cgroup, when given) and its /proc/self/cgroup."""
    root = tmp_path / "cgroup"
    root.mkdir(exist_ok=True)
    if cpu_max is not None:
        write(root / cgroup.strip("/") / "cpu.max", cpu_max + "\n")
    return root, write(tmp_path / "proc-self-cgroup", f"0::{cgroup}\n")


def count(root: Path, proc: Path, mask: set[int] | None = None, host: int | None = 64) -> tuple[int, str]:
    got = available_cpus(root, proc, affinity=lambda: mask, cpu_count=lambda: host)
    return got.count, got.source


@pytest.mark.parametrize(
    ("cpu_max", "mask", "expected"),
    [
        ("200000 100000", set(range(64)), (2, "cgroup")),  # a container limited to 2 CPUs
        ("250000 100000", set(range(64)), (2, "cgroup")),  # 2.5 CPUs: rounded down
        ("50000 100000", set(range(64)), (1, "cgroup")),  # half a CPU: at least 1
        ("400000 100000", {0, 1}, (2, "affinity")),  # the mask is tighter than the quota
        ("400000 100000", set(range(4)), (4, "affinity")),  # equal: the mask says so first
        ("max 100000", set(range(6)), (6, "affinity")),  # no quota
        (None, {3, 5, 7}, (3, "affinity")),  # no cpu.max file at all
        ("garbage", {3, 5, 7}, (3, "affinity")),
        ("0 100000", {3, 5, 7}, (3, "affinity")),
    ],
)
def test_cgroup_v2_quota_and_affinity_mask(tmp_path, cpu_max, mask, expected) -> None:
    root, proc = v2(tmp_path, cpu_max)
    assert count(root, proc, mask) == expected


def test_without_an_affinity_mask_the_host_count_is_capped_by_the_quota(tmp_path) -> None:
    root, proc = v2(tmp_path, None)
    assert count(root, proc, None, host=64) == (64, "cpu_count")
    assert count(root, proc, set(), host=None) == (1, "cpu_count")
    root, proc = v2(tmp_path, "300000 100000")
    assert count(root, proc, None, host=64) == (3, "cgroup")


def test_the_tightest_quota_of_the_process_cgroup_and_those_above_it_wins(tmp_path) -> None:
    root, proc = v2(tmp_path, "800000 100000", cgroup="/kubepods/pod1/ctr")
    write(root / "kubepods" / "pod1" / "cpu.max", "300000 100000")
    write(root / "kubepods" / "cpu.max", "max 100000")
    write(root / "cpu.max", "1600000 100000")
    quota = cgroup_quota(root, proc)
    assert quota is not None and quota.cpus == 3.0 and "pod1" in quota.where
    assert count(root, proc, set(range(64))) == (3, "cgroup")


def test_cgroup_v1_cfs_quota(tmp_path) -> None:
    root = tmp_path / "cgroup"
    proc = write(tmp_path / "proc", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "150000")
    write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000")
    assert count(root, proc, set(range(16))) == (1, "cgroup")
    write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "-1")  # unlimited
    assert count(root, proc, set(range(16))) == (16, "affinity")


def test_cgroup_v1_inside_a_container_sees_its_own_cgroup_at_the_mount(tmp_path) -> None:
    root = tmp_path / "cgroup"  # the path in /proc/self/cgroup does not exist under the mount
    proc = write(tmp_path / "proc", "4:cpu,cpuacct:/docker/abc\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "200000")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000")
    assert count(root, proc, set(range(16))) == (2, "cgroup")


def test_without_proc_self_cgroup_the_roots_are_read(tmp_path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu.max", "200000 100000")
    assert count(root, tmp_path / "missing", set(range(8))) == (2, "cgroup")
    write(root / "cpu.max", "max 100000")
    write(root / "cpu" / "cpu.cfs_quota_us", "100000")
    write(root / "cpu" / "cpu.cfs_period_us", "100000")
    assert count(root, tmp_path / "missing", set(range(8))) == (1, "cgroup")


def test_parsers() -> None:
    assert parse_cpu_max("200000 100000") == 2.0
    assert parse_cpu_max("max 100000") is None
    assert parse_cpu_max("max") is None and parse_cpu_max("") is None
    assert parse_cpu_max("100000 0") is None and parse_cpu_max("-5 100000") is None
    assert parse_cpu_max("1 2 3") is None and parse_cpu_max("x 100000") is None
    assert parse_cfs("50000", "100000") == 0.5
    assert parse_cfs("-1", "100000") is None
    assert parse_cfs("100000", "x") is None


def test_the_detail_names_the_mask_and_the_quota_file(tmp_path) -> None:
    root, proc = v2(tmp_path, "200000 100000")
    got = available_cpus(root, proc, affinity=lambda: set(range(8)))
    assert "affinity mask of 8 CPUs" in got.detail
    assert "cpu.max" in got.detail and "2 CPUs" in got.detail


def test_this_machine() -> None:
    """The real files: never more than the affinity mask, never below 1."""
    got = available_cpus()
    assert 1 <= got.count <= len(os.sched_getaffinity(0))
