"""Limits, timeouts, the output limit and the usage a Result reports, on every backend that has them."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lxrun.spec import Limits

from .conftest import sh

MIB = 1 << 20
BUSY = "while :; do :; done"


def test_memory_limit_oom_kills_and_says_so(backend: str, state_root: Path) -> None:
    limit = 32 * MIB
    result = sh(
        backend, state_root, "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived", limits=Limits(memory=limit)
    )
    assert result.oom_killed
    assert (result.exit_code, result.signal) == (137, signal.SIGKILL)
    assert result.stdout == b""
    # It reached the limit and no more: no swap on top (a few pages of slack for what the kernel charges).
    assert result.peak_memory is not None and 0.9 * limit <= result.peak_memory <= 1.05 * limit


def test_within_the_memory_limit_nothing_is_killed(backend: str, state_root: Path) -> None:
    result = sh(
        backend, state_root, "x=$(head -c 4000000 /dev/zero | tr '\\0' x); echo ok", limits=Limits(memory=64 * MIB)
    )
    assert (result.stdout, result.oom_killed, result.exit_code) == (b"ok\n", False, 0)


def test_pids_limit_stops_a_fork_bomb(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, "for i in $(seq 50); do sleep 2 & done; wait", limits=Limits(pids=10))
    assert b"can't fork" in (result.stderr or b"")
    assert result.pids_peak is not None and result.pids_peak <= 10


def test_cpus_caps_cpu_time(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, BUSY, limits=Limits(cpus=0.5), timeout=2, stop_timeout=0)
    assert result.timed_out and result.cpu_user is not None and result.cpu_system is not None
    used = (result.cpu_user + result.cpu_system) / result.wall_time
    assert 0.1 < used < 0.7, used  # at most half a CPU (less when the VM is busy), not the two it has


def test_cpuset_pins_the_task(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, "grep Cpus_allowed_list /proc/self/status", limits=Limits(cpuset_cpus="1"))
    assert result.stdout.split() == [b"Cpus_allowed_list:", b"1"]


def test_cpu_shares_weigh_contention(backend: str, state_root: Path) -> None:

    def busy(shares: int) -> float:
        result = sh(
            backend, state_root, BUSY, limits=Limits(cpu_shares=shares, cpuset_cpus="0"), timeout=3, stop_timeout=0
        )
        assert result.cpu_user is not None and result.cpu_system is not None
        return result.cpu_user + result.cpu_system

    with ThreadPoolExecutor(2) as pool:
        heavy, light = pool.map(busy, (1024, 256))
    assert heavy > 2 * light, (heavy, light)  # 4:1 while both run on CPU 0


def test_usage_is_reported(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, "x=$(head -c 8000000 /dev/zero | tr '\\0' x); sleep 0.1 & wait")
    assert result.cpu_user is not None and result.cpu_system is not None
    assert result.cpu_user + result.cpu_system > 0
    assert result.peak_memory is not None and result.peak_memory > 8_000_000
    assert result.pids_peak is not None and result.pids_peak >= 2


def test_timeout_sigterm_first(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, "sleep 30", timeout=0.5, stop_timeout=5)
    assert result.timed_out
    assert (result.exit_code, result.signal) == (143, signal.SIGTERM)


def test_timeout_kills_what_ignores_sigterm_and_its_setsid_grandchild(backend: str, state_root: Path) -> None:
    script = "setsid sh -c 'trap \"\" TERM; sleep 30' & trap '' TERM; sleep 30 & wait; wait"
    result = sh(backend, state_root, script, timeout=0.5, stop_timeout=0.5)
    assert result.timed_out
    assert (result.exit_code, result.signal) == (137, signal.SIGKILL)
    assert result.wall_time < 30


def test_no_timeout_when_done_in_time(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, "echo fine", timeout=30)
    assert (result.stdout, result.timed_out) == (b"fine\n", False)


def test_output_limit_keeps_head_and_tail(backend: str, state_root: Path) -> None:
    script = "echo FIRST; seq 100000; echo LAST; echo ERR >&2"
    result = sh(backend, state_root, script, output_limit=1000)
    assert result.output_truncated and result.exit_code == 0
    assert result.stdout is not None and result.stdout.startswith(b"FIRST\n1\n2\n")
    assert result.stdout.endswith(b"99999\n100000\nLAST\n")
    assert b"[lxrun: output truncated, " in result.stdout and 1000 < len(result.stdout) < 1200
    assert result.stderr == b"ERR\n"  # each stream has its own limit


def test_output_limit_on_a_descriptor(backend: str, state_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    with target.open("wb") as out:
        result = sh(backend, state_root, "seq 100000", stdout=out.fileno(), output_limit=100)
    data = target.read_bytes()
    assert result.output_truncated and result.stdout is None
    assert data.startswith(b"1\n2\n3\n") and data.endswith(b"99999\n100000\n") and len(data) < 200
