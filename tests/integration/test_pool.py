"""lxrun.Pool: tasks handed to prepared sandboxes. Each gets a sandbox of its own (namespaces, root,
cgroup), used once; its limits and usage are its own; what the pool can't serve runs cold and says so;
nothing is left once the pool is closed, and a killed pool owner leaves only what gc removes. (The
conformance suite runs every case warm too: tests/conformance, backend "warm".)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import lxrun
from lxrun import Limits, Pool, TaskSpec, Volume
from lxrun.errors import SpecError

from .conftest import HANG_GUARD
from .test_recovery import NOTHING, gc, leftovers, task_ids

pytestmark = pytest.mark.v2  # also in the pure cgroup-v2 guest (make test-v2)

MIB = 1 << 20
COLD = "pool: ran cold"


def sh(script: str, **kwargs: object) -> TaskSpec:
    return TaskSpec(stack="busybox", argv=["sh", "-c", script], **kwargs)  # type: ignore[arg-type]


def ran_cold(result: lxrun.Result) -> list[str]:
    return [notice for notice in result.notices if notice.startswith(COLD)]


def test_each_task_gets_a_sandbox_of_its_own(state_root: Path) -> None:
    with Pool("busybox", size=2, root=state_root) as pool:
        assert pool.wait_ready()
        script = "for n in mnt pid net; do readlink /proc/self/ns/$n; done; ls /tmp; touch /tmp/mine; echo $$"
        first, second = pool.run(sh(script)), pool.run(sh(script))
    assert not ran_cold(first) and not ran_cold(second)
    assert first.exit_code == second.exit_code == 0
    one, other = first.stdout.decode().split("\n"), second.stdout.decode().split("\n")
    assert one[:3] != other[:3] and len(set(one[:3]) | set(other[:3])) == 6  # no namespace shared
    assert "mine" not in other  # the first one's /tmp is gone with its sandbox
    assert one[-2] == other[-2] == "2"  # the task is the second process of a fresh pid namespace
    assert first.task_id != second.task_id


def test_a_task_leaves_nothing_running_in_its_sandbox(state_root: Path) -> None:
    marker = "pool-straggler-marker"
    with Pool("busybox", size=1, root=state_root) as pool:
        assert pool.wait_ready()
        result = pool.run(sh(f"(sleep 60 # {marker}\n) & echo started"))
        assert result.stdout == b"started\n" and not ran_cold(result)
        assert subprocess.run(["pgrep", "-f", marker], capture_output=True).stdout == b""
    assert leftovers(state_root, marker, set()) == NOTHING


def test_results_are_a_cold_tasks(state_root: Path) -> None:
    cases = {
        "exit and streams": sh("echo out; echo err >&2; exit 7"),
        "signal": sh("kill -TERM $$"),
        "timeout": sh("sleep 5", timeout=0.2, stop_timeout=1),
        # One process to kill (a shell's pipeline lets the OOM killer pick among several, as it likes).
        "oom": TaskSpec(
            stack="busybox",
            argv=["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
            limits=Limits(memory=16 * MIB),
        ),
    }
    with Pool("busybox", size=1, root=state_root, limits=Limits(memory=64 * MIB)) as pool:
        for name, spec in cases.items():
            assert pool.wait_ready(), pool.failure
            warm = pool.run(spec)
            cold = lxrun.run(spec, root=state_root)
            assert not ran_cold(warm), (name, warm.notices)
            fields = ("exit_code", "signal", "timed_out", "oom_killed", "stdout", "stderr")
            assert {f: getattr(warm, f) for f in fields} == {f: getattr(cold, f) for f in fields}, name
            expected = {"exit and streams": warm.exit_code == 7, "signal": warm.signal == 15}
            assert expected.get(name, True) and (name != "timeout" or warm.timed_out), name
            assert name != "oom" or (warm.oom_killed and warm.exit_code == 137), name


def test_a_tasks_own_limit_is_written_to_its_cgroup(state_root: Path) -> None:
    with Pool("busybox", size=1, root=state_root, limits=Limits(memory=256 * MIB, pids=64)) as pool:
        assert pool.wait_ready()
        result = pool.run(sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null"
                             " || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max",
                             limits=Limits(memory=96 * MIB, pids=32)))  # fmt: skip
    assert not ran_cold(result)
    assert result.stdout.split() == [str(96 * MIB).encode(), b"32"]


def test_usage_is_the_tasks_alone(state_root: Path) -> None:
    with Pool("busybox", size=1, root=state_root) as pool:
        assert pool.wait_ready()
        idle = pool.run(TaskSpec(stack="busybox", argv=["true"]))
        assert pool.wait_ready()
        busy = pool.run(sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"))
    assert not ran_cold(idle) and not ran_cold(busy)
    assert idle.cpu_user is not None and busy.cpu_user is not None
    assert idle.cpu_user + (idle.cpu_system or 0) < 0.05 < busy.cpu_user
    assert idle.peak_memory is not None and 0 < idle.peak_memory < 64 * MIB


def test_what_the_pool_cant_serve_runs_cold_and_says_why(state_root: Path, volume_dir: Path) -> None:
    with Pool("busybox", size=1, root=state_root) as pool:
        assert pool.wait_ready()
        reasons = {
            "a volume": sh("echo hi", volumes=[Volume(str(volume_dir), "/data")]),
            "a workdir": sh("pwd", workdir="/tmp"),
            "limits of another kind": sh("echo hi", limits=Limits(cpus=0.5)),
        }
        for case, spec in reasons.items():
            result = pool.run(spec)
            assert result.exit_code == 0 and len(ran_cold(result)) == 1, case
        assert ran_cold(pool.run(sh("pwd", workdir="/tmp"))) == [f"{COLD}: another working directory"]
        assert pool.ready == 1  # handed nothing: still ready


def test_a_task_run_cold_keeps_its_own_bounds(state_root: Path) -> None:
    """Unlimited (-1) is no bound: run cold, the host's default must not come back in its place."""
    read_limit = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"
    with Pool("busybox", size=1, root=state_root) as pool:
        assert pool.wait_ready()
        unbounded = pool.run(sh(read_limit, limits=Limits(memory=-1)))
        bounded = pool.run(sh(read_limit))
    cold = lxrun.run(sh(read_limit, limits=Limits(memory=-1)), root=state_root)
    assert ran_cold(unbounded) and not ran_cold(bounded)
    assert unbounded.stdout == cold.stdout != bounded.stdout  # no bound, as lxrun.run gives it; the default's


def test_a_template_no_task_could_run_on_fails_at_once(state_root: Path) -> None:
    with pytest.raises(SpecError, match="keep"):
        Pool(TaskSpec(stack="busybox", argv=["true"], keep=True), root=state_root)
    with pytest.raises(lxrun.LxrunError, match="no-such-stack"):
        Pool("no-such-stack", root=state_root)


def test_many_threads_at_once(state_root: Path) -> None:
    with Pool("busybox", size=3, root=state_root) as pool:
        assert pool.wait_ready()
        results: list[lxrun.Result] = []
        lock = threading.Lock()

        def worker(number: int) -> None:
            for round_number in range(5):
                result = pool.run(sh(f"echo {number}-{round_number}"))
                with lock:
                    results.append(result)

        threads = [threading.Thread(target=worker, args=(number,)) for number in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG_GUARD)
    assert sorted(r.stdout for r in results) == sorted(f"{n}-{r}\n".encode() for n in range(4) for r in range(5))
    assert len({r.task_id for r in results}) == 20
    assert task_ids(state_root) == set()


def test_a_killed_pool_owner_leaves_only_what_gc_removes(state_root: Path) -> None:
    marker = "pool-owner-crash-marker"
    owner = textwrap.dedent(f"""
        import sys, lxrun
        pool = lxrun.Pool("busybox", size=2, root={str(state_root)!r})
        assert pool.wait_ready()
        pool.run(lxrun.TaskSpec(stack="busybox", argv=["sh", "-c", "echo ready; sleep 60 # {marker}"],
                                stdout=sys.stdout.fileno()))
    """)
    proc = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    ids = task_ids(state_root)
    assert len(ids) >= 2  # the running task's sandbox and a prepared one at least
    proc.kill()
    proc.wait()
    released = gc(state_root)
    assert ids <= set(released.tasks)
    assert leftovers(state_root, marker, ids) == NOTHING
