"""What the CLI says where it used to say nothing or something cryptic (issue 13.9): kept dirs listed and
removed, a task id found before a name equal to it, gc --dry-run naming what gc removes, a line when
lxrun's timeout or the OOM killer ended the task, limits refused with the reason."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from lxrun import Runtime

from .conftest import LXRUN, lxrun_cli


def exec_(root: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return lxrun_cli(root, "exec", "--stack", "busybox", *args, **kwargs)  # type: ignore[arg-type]


def test_kept_dirs_are_listed_and_removed(state_root: Path) -> None:
    done = exec_(state_root, "--keep", "--", "sh", "-c", "echo k > /f")
    upper = Path(done.stderr.strip().rsplit(" ", 1)[-1])
    task_id = upper.parent.name
    listed = lxrun_cli(state_root, "kept", "ls")
    assert any(line.split()[0] == task_id and line.endswith(str(upper)) for line in listed.stdout.splitlines())
    assert [kept.id for kept in Runtime(state_root).kept() if kept.id == task_id] == [task_id]
    removed = lxrun_cli(state_root, "kept", "rm", task_id)
    assert removed.returncode == 0 and not upper.parent.exists(), removed.stderr
    again = lxrun_cli(state_root, "kept", "rm", task_id)
    assert again.returncode == 125 and "no kept dir" in again.stderr


def test_a_task_id_wins_over_a_name_equal_to_it(state_root: Path) -> None:
    env = {**os.environ, "LXRUN_ROOT": str(state_root)}
    first = subprocess.Popen([LXRUN, "exec", "--stack", "busybox", "--name", "first", "--", "sleep", "30"], env=env)
    try:
        first_id = wait_for_task(state_root, "first")
        second = subprocess.Popen(
            [LXRUN, "exec", "--stack", "busybox", "--name", first_id, "--", "sleep", "30"], env=env
        )
        try:
            second_id = wait_for_task(state_root, first_id)
            assert second_id != first_id
            assert Runtime(state_root).inspect(first_id).id == first_id
        finally:
            second.terminate()  # lxrun passes it on to the task
            second.wait()
    finally:
        first.terminate()
        first.wait()


def wait_for_task(root: Path, name: str) -> str:
    """The id of the task named `name` once it runs (polls: a task starts in milliseconds)."""
    for _ in range(500):
        for task in Runtime(root).ps():
            if task.name == name and task.pid is not None:
                return task.id
        time.sleep(0.02)
    raise AssertionError(f"task {name} never started")


def test_gc_dry_run_names_the_idle_cgroup_parents_gc_removes(state_root: Path) -> None:
    assert exec_(state_root, "--", "true").returncode == 0
    dry = lxrun_cli(state_root, "gc", "--dry-run").stdout.splitlines()
    wet = lxrun_cli(state_root, "gc").stdout.splitlines()
    removed = [line.removeprefix("released ") for line in wet if line.startswith("released idle cgroup")]
    listed = [line.removeprefix("would release ") for line in dry if line.startswith("would release idle cgroup")]
    assert set(removed) <= set(listed), (dry, wet)  # another engineer's task may keep some parents busy


def test_timeout_and_oom_say_so_without_stats(state_root: Path) -> None:
    timed = exec_(state_root, "--timeout", "0.3", "--", "sleep", "10")
    assert timed.returncode == 143 and "reached its --timeout" in timed.stderr
    hungry = exec_(state_root, "-m", "8m", "--", "sh", "-c", "x=$(head -c 50000000 /dev/zero | tr '\\0' a)")
    assert hungry.returncode == 137 and "ran out of memory" in hungry.stderr
    assert "reached" not in exec_(state_root, "--", "sh", "-c", "exit 143").stderr


def test_limits_refused_with_the_reason(state_root: Path) -> None:
    pids = exec_(state_root, "--pids-limit", "2", "--", "true")
    assert pids.returncode == 125 and "lxrun's own pid 1" in pids.stderr and "at least 3" in pids.stderr
    assert exec_(state_root, "--pids-limit", "3", "--", "true").returncode == 0
    user = exec_(state_root, "--user", "70000", "--", "true")
    assert user.returncode == 125 and "0..65535" in user.stderr and "--userns host" in user.stderr
    assert exec_(state_root, "--user", "65535", "--", "true").returncode == 0
    memory = exec_(state_root, "--memory", "8388608t", "--", "true")
    assert memory.returncode == 125 and "more than the kernel can limit" in memory.stderr


def test_a_wrong_root_is_named(tmp_path: Path, state_root: Path) -> None:
    done = lxrun_cli(state_root, "exec", "--root", str(tmp_path), "--stack", "busybox", "--", "true")
    assert done.returncode == 125 and f"not found in {tmp_path}/stacks" in done.stderr
