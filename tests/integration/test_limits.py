"""Limits, timeouts and results on the real kernel (this host: cgroup v1), through lxrun.run and the CLI."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from lxrun import Result, TaskSpec, run
from lxrun.backends.base import TaskHandle
from lxrun.cgroups import detect
from lxrun.cgroups.limits import shares_to_weight
from lxrun.spec import Limits

from .conftest import lxrun_cli, sh

pytestmark = [pytest.mark.v2, pytest.mark.usefixtures("no_task_cgroups_left")]


@pytest.fixture
def no_task_cgroups_left() -> Any:
    yield
    leftovers = [
        str(p)
        for p in Path("/sys/fs/cgroup").rglob("lxrun-*")
        if p.name.startswith("lxrun-") and len(p.name) == len("lxrun-") + 12
    ]
    assert leftovers == [], "a task cgroup survived its task"


def task_cgroup_dir(controller: str, task_id: str) -> Path:
    manager = detect()
    if manager.version == "v1":
        return Path(f"{manager.mounts[controller]}{manager.own[controller].rstrip('/')}/lxrun/lxrun-{task_id}")  # type: ignore[attr-defined]
    return Path(f"{manager.mount}{manager.own.rstrip('/')}/lxrun/lxrun-{task_id}")  # type: ignore[attr-defined]


def test_a_memory_hog_is_oom_killed_and_says_so(state_root: Path) -> None:
    result = sh(state_root, "dd if=/dev/zero of=/dev/null bs=200M count=1", limits=Limits(memory=64 << 20))
    assert result.oom_killed
    assert result.signal == 9
    assert result.peak_memory is not None and result.peak_memory <= (64 << 20) + (1 << 20)


def test_exit_137_without_an_oom_is_not_oom(state_root: Path) -> None:
    result = sh(state_root, "kill -KILL $$", limits=Limits(memory=64 << 20))
    assert (result.exit_code, result.oom_killed) == (137, False)


def test_peak_memory_is_within_ten_percent_of_a_known_allocation(state_root: Path) -> None:
    # dd reads 100 MiB of zeros into one buffer: every page of it is touched.
    result = sh(state_root, "dd if=/dev/zero of=/dev/null bs=100M count=1", limits=Limits(memory=512 << 20))
    assert result.exit_code == 0
    assert result.peak_memory is not None
    assert (100 << 20) * 0.95 <= result.peak_memory <= (100 << 20) * 1.10, result.peak_memory


def test_swap_is_disabled_under_a_memory_limit(state_root: Path) -> None:
    # v1: RAM+swap capped at the RAM limit; v2: no swap at all. Either way, the task gets no swap.
    files = {
        "v1": {"memory.limit_in_bytes": str(64 << 20), "memory.memsw.limit_in_bytes": str(64 << 20)},
        "v2": {"memory.max": str(64 << 20), "memory.swap.max": "0"},
    }[detect().version]
    seen: dict[str, str] = {}

    def look(handle: TaskHandle) -> None:
        for name in files:
            seen[name] = (task_cgroup_dir("memory", handle.task_id) / name).read_text().strip()

    spec = TaskSpec(stack="busybox", argv=["sleep", "0.2"], limits=Limits(memory=64 << 20))
    run(spec, root=state_root, on_start=look)
    assert seen == files


def test_a_fork_bomb_is_stopped_by_the_pids_limit(state_root: Path) -> None:
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 2"
    result = sh(state_root, bomb, limits=Limits(pids=40), timeout=4, stop_timeout=0)
    assert b"can't fork" in (result.stderr or b"")
    assert result.pids_peak is not None and result.pids_peak <= 40
    # The host keeps working: we can still start processes.
    assert subprocess.run(["true"], check=False).returncode == 0


def test_half_a_cpu_gets_half_a_cpu(state_root: Path) -> None:
    busy = "timeout -s KILL 2 sh -c 'while :; do :; done'; true"
    result = sh(state_root, busy, limits=Limits(cpus=0.5))
    assert result.cpu_user is not None and result.cpu_system is not None
    used = result.cpu_user + result.cpu_system
    assert 0.8 <= used <= 1.2, f"{used:.2f} s of CPU in 2 s under --cpus 0.5"


def test_cpu_shares_and_cpuset_are_applied(state_root: Path) -> None:
    weight_file, weight = {"v1": ("cpu.shares", "512"), "v2": ("cpu.weight", str(shares_to_weight(512)))}[
        detect().version
    ]
    seen: dict[str, str] = {}

    def look(handle: TaskHandle) -> None:
        seen["weight"] = (task_cgroup_dir("cpu", handle.task_id) / weight_file).read_text().strip()
        seen["cpus"] = (task_cgroup_dir("cpuset", handle.task_id) / "cpuset.cpus").read_text().strip()

    spec = TaskSpec(
        stack="busybox",
        argv=["sh", "-c", "grep Cpus_allowed_list /proc/self/status; sleep 0.2"],
        limits=Limits(cpu_shares=512, cpuset_cpus="1"),
    )
    result = run(spec, root=state_root, on_start=look)
    assert seen == {"weight": weight, "cpus": "1"}
    assert result.stdout is not None and result.stdout.split() == [b"Cpus_allowed_list:", b"1"]


def test_timeout_kills_a_task_ignoring_sigterm_and_its_setsid_grandchild(state_root: Path) -> None:
    marker = "31337"
    script = f"trap '' TERM; setsid sh -c \"trap '' TERM; exec sleep {marker}\" & sleep 1000"
    started = time.monotonic()
    result = sh(state_root, script, timeout=1, stop_timeout=1)
    elapsed = time.monotonic() - started
    assert result.timed_out and result.signal == 9
    assert 1.9 < elapsed < 5
    assert subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).stdout == b""


def test_sigterm_at_the_timeout_lets_the_task_end_itself(state_root: Path) -> None:
    result = sh(state_root, "trap 'echo bye; exit 3' TERM; while :; do sleep 0.05; done", timeout=0.5)
    assert (result.timed_out, result.exit_code, result.stdout) == (True, 3, b"bye\n")


def test_a_task_that_ends_in_time_did_not_time_out(state_root: Path) -> None:
    result = sh(state_root, "exit 0", timeout=5)
    assert (result.timed_out, result.exit_code) == (False, 0)


def test_output_limit_keeps_head_and_tail_and_marks_the_cut(state_root: Path) -> None:
    result = sh(state_root, "echo HEAD; seq 1 100000; echo TAIL", output_limit=1000)
    out = result.stdout or b""
    assert out.startswith(b"HEAD\n1\n2\n") and out.endswith(b"99999\n100000\nTAIL\n")
    assert b"[lxrun: output truncated," in out
    assert len(out) < 1000 + 100
    assert result.output_truncated
    assert not sh(state_root, "echo short", output_limit=1000).output_truncated


def test_output_limit_on_a_descriptor(state_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    with target.open("wb") as out:
        result = sh(state_root, "seq 1 100000; echo END", stdout=out.fileno(), output_limit=200)
    text = target.read_bytes()
    assert result.output_truncated and text.startswith(b"1\n2\n") and text.endswith(b"END\n")
    assert len(text) < 300


def test_every_result_field_is_filled(state_root: Path) -> None:
    result: Result = sh(state_root, "echo x > /dev/null")
    assert result.peak_memory is not None and result.peak_memory > 0
    assert result.cpu_user is not None and result.cpu_system is not None
    assert result.pids_peak is not None and result.pids_peak >= 1
    assert (result.oom_killed, result.timed_out, result.output_truncated) == (False, False, False)


def test_cgroup_namespace_hides_the_host_path(state_root: Path) -> None:
    result = sh(state_root, "cat /proc/self/cgroup")
    lines = (result.stdout or b"").decode().splitlines()
    joined = [line for line in lines if any(f":{c}:" in line for c in ("memory", "pids"))] or [
        line for line in lines if line.startswith("0::")
    ]
    assert joined and all(line.rsplit(":", 1)[1] == "/" for line in joined), lines


def test_stats_line_and_result_json(state_root: Path, tmp_path: Path) -> None:
    result_file = tmp_path / "r.json"
    done = lxrun_cli(
        state_root,
        "exec",
        "--stack",
        "busybox",
        "--stats",
        "-m",
        "64m",
        "--pids-limit",
        "10",
        "--result-json",
        str(result_file),
        "--",
        "sh",
        "-c",
        "exit 2",
    )
    assert done.returncode == 2
    assert done.stderr.startswith("lxrun: task ") and " exit 2 wall " in done.stderr and " peak " in done.stderr
    import json

    data = json.loads(result_file.read_text())
    for key in ("oom_killed", "timed_out", "cpu_user", "cpu_system", "peak_memory", "pids_peak", "output_truncated"):
        assert key in data


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "12zb"], "--memory 12zb: is not a size"),
        (["--memory", "0"], "--memory: 0 bytes is below the minimum of 6m"),
        (["--cpus", "0"], "--cpus: 0.0 is not a positive number of CPUs"),
        (["--cpus", "-1"], "--cpus: -1.0 is not a positive number of CPUs"),
        (["--cpus", str(len(os.sched_getaffinity(0)) + 1)], "CPUs this host gives lxrun"),
        (["--pids-limit", "0"], "--pids-limit: 0 allows no process"),
        (["--timeout", "0"], "--timeout: 0.0 is not a positive number of seconds"),
        (["--timeout", "soon"], "--timeout soon: is not a number"),
        (["--cpuset-cpus", "99"], "--cpuset-cpus 99: CPUs [99] are not available here"),
        (["--cgroup-parent", "/lxrun-no-such-parent"], "--cgroup-parent /lxrun-no-such-parent: does not exist"),
        (["--output-limit", "lots"], "--output-limit lots: is not a size"),
    ],
)
def test_bad_limits_are_one_line_125_and_create_nothing(state_root: Path, args: list[str], message: str) -> None:
    before = lxrun_cgroups()
    done = lxrun_cli(state_root, "exec", "--stack", "busybox", *args, "--", "true")
    assert (done.returncode, done.stderr.count("\n")) == (125, 1), done.stderr
    assert message in done.stderr
    assert lxrun_cgroups() == before


def lxrun_cgroups() -> list[str]:
    """lxrun's parent cgroups and everything in them."""
    parents = [Path(path) for path in detect().parent_dirs()]
    return sorted(str(p) for parent in parents if parent.exists() for p in [parent, *parent.rglob("*")] if p.is_dir())
