"""Crashes, names and clean-up: a runner SIGKILLed at any step leaves only what `lxrun gc` removes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lxrun import Released, Runtime, TaskHandle, TaskSpec, run
from lxrun.cgroups import detect
from lxrun.errors import SpecError
from lxrun.spec import Limits

from ..conftest import require
from .conftest import LXRUN, host_mounts, lxrun_cli, sh

STEPS = ["record", "name", "uid-range", "kept", "stdio", "cgroup", "spawned", "running", "collected", "released"]


def task_ids(root: Path) -> set[str]:
    return {p.stem for p in (root / "run").glob("*.json")}


def task_cgroups(ids: set[str]) -> list[str]:
    """The cgroups of these tasks (other runners on this host may have tasks of their own)."""
    parents = [Path(path) for path in detect().parent_dirs()]
    return sorted(
        str(child) for parent in parents if parent.is_dir() for child in parent.iterdir()
        if child.is_dir() and child.name.removeprefix("lxrun-") in ids
    )  # fmt: skip


def leftovers(root: Path, marker: str, ids: set[str]) -> dict[str, object]:
    """Everything these tasks could leave behind, as a dict that is empty-valued when nothing was."""
    processes = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return {
        "records": sorted(p.name for p in (root / "run").iterdir()),
        "names": sorted(p.name for p in (root / "names").iterdir()) if (root / "names").exists() else [],
        "cgroups": task_cgroups(ids),
        "processes": processes,
        "kept work dirs": sorted(str(p) for p in (root / "kept").glob("*/work")),
    }


NOTHING = {"records": [], "names": [], "cgroups": [], "processes": [], "kept work dirs": []}


def gc(root: Path) -> Released:
    return Runtime(root).gc().released


def test_the_record_names_what_the_task_holds(state_root: Path) -> None:
    seen: dict[str, object] = {}

    def look(handle: TaskHandle) -> None:
        seen.update(json.loads((state_root / "run" / f"{handle.task_id}.json").read_text()))

    result = run(TaskSpec(stack="busybox", argv=["sleep", "0.1"], name="rec"), root=state_root, on_start=look)
    assert seen["id"] == result.task_id and seen["name"] == "rec" and seen["stack"] == "busybox@1"
    assert seen["runner_pid"] == os.getpid() and isinstance(seen["pid"], int)
    assert seen["cgroup"] == f"lxrun-{result.task_id}" and seen["command"] == ["sleep", "0.1"]


def test_a_name_is_held_while_its_task_runs(state_root: Path) -> None:
    started: list[TaskHandle] = []

    def second(handle: TaskHandle) -> None:
        started.append(handle)
        with pytest.raises(SpecError, match=f"^name twin: is in use by task {handle.task_id}"):
            run(TaskSpec(stack="busybox", argv=["true"], name="twin"), root=state_root)

    run(TaskSpec(stack="busybox", argv=["sleep", "0.1"], name="twin"), root=state_root, on_start=second)
    assert started and run(TaskSpec(stack="busybox", argv=["true"], name="twin"), root=state_root).exit_code == 0


@pytest.mark.parametrize("backend", ["native", "lxc", "docker"])
def test_ps_inspect_and_kill(state_root: Path, backend: str) -> None:
    probe = Runtime(state_root).backend(backend).probe()
    require(probe.available, f"backend {backend}: {probe.reason}")
    # lxc and docker can't give a task a user namespace of its own here (see docs/backends.md).
    userns = [] if backend == "native" else ["--userns", "host"]
    proc = subprocess.Popen(
        [LXRUN, "exec", "--root", str(state_root), "--backend", backend, "--stack", "busybox", "--name", "victim",
         "-m", "32m", *userns, "--",
         "sh", "-c", "trap 'echo got-term; exit 9' TERM; echo up; while :; do sleep 0.05; done"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    listing = lxrun_cli(state_root, "ps", "--json").stdout.splitlines()
    assert len(listing) == 1
    task = json.loads(listing[0])
    assert (task["name"], task["stack"], task["state"]) == ("victim", "busybox@1", "running")
    assert 0 < task["memory"] <= 32 << 20 and task["pid"] > 0  # the task's own cgroup: within its limit
    inspected = json.loads(lxrun_cli(state_root, "inspect", task["id"][:6]).stdout)
    assert inspected["id"] == task["id"] and inspected["command"][0] == "sh"
    assert lxrun_cli(state_root, "kill", "--signal", "TERM", "victim").stdout.strip() == task["id"]
    assert proc.wait(timeout=10) == 9 and proc.stdout.read() == "got-term\n"
    assert lxrun_cli(state_root, "ps", "--json").stdout == ""
    missing = lxrun_cli(state_root, "kill", "victim")
    assert (missing.returncode, missing.stderr) == (
        125,
        "lxrun: task victim: no such task in flight (see `lxrun ps`)\n",
    )


@pytest.mark.parametrize("step", STEPS)
def test_a_runner_killed_at_any_step_leaves_only_what_gc_removes(state_root: Path, step: str) -> None:
    marker = f"sleep 4{STEPS.index(step)}.5"
    # Until it runs, the task would live on if its runner's death did not end it; after, it has ended.
    script = f"exec {marker}" if STEPS.index(step) <= STEPS.index("running") else "true"
    mounts_before = host_mounts()
    done = subprocess.run(
        [LXRUN, "exec", "--root", str(state_root), "--stack", "busybox", "--name", f"crash-{step}", "-m", "64m",
         "--", "sh", "-c", script],
        env={**os.environ, "LXRUN_FAULT": step}, capture_output=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    ids = task_ids(state_root)
    assert len(ids) == 1, "the record is written before anything else"
    time.sleep(0.2)  # the parent-death signal reaches the sandbox's pid 1
    assert leftovers(state_root, marker, ids)["processes"] == [], "the sandbox outlived its runner"
    gc(state_root)
    assert leftovers(state_root, marker, ids) == NOTHING
    assert host_mounts() == mounts_before
    assert gc(state_root).nothing  # idempotent


def test_a_runner_killed_while_writing_its_record_leaves_none(state_root: Path) -> None:
    """Between the record's content and its name: nothing to wait out, nothing for gc to do."""
    done = subprocess.run(
        [LXRUN, "exec", "--root", str(state_root), "--stack", "busybox", "--", "true"],
        env={**os.environ, "LXRUN_FAULT": "record-written"}, capture_output=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert list((state_root / "run").iterdir()) == []
    assert gc(state_root).nothing


def test_runners_killed_at_random_moments(state_root: Path) -> None:
    rng = random.Random(7)
    ids: set[str] = set()
    for _ in range(20):
        proc = subprocess.Popen(
            [LXRUN, "exec", "--root", str(state_root), "--stack", "busybox", "-m", "64m", "--pids-limit", "20",
             "--", "sh", "-c", "sleep 0.05; echo x > /tmp/x; exec sleep 42.25"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0, 0.12))
        ids |= task_ids(state_root)
        proc.kill()
        proc.wait()
        ids |= task_ids(state_root)
    time.sleep(0.3)
    gc(state_root)
    assert leftovers(state_root, "sleep 42.25", ids) == NOTHING


def test_gc_never_touches_a_live_task(state_root: Path) -> None:
    def collect_meanwhile(handle: TaskHandle) -> None:
        assert gc(state_root).nothing

    result = run(
        TaskSpec(stack="busybox", argv=["sh", "-c", "sleep 0.2; echo alive"]),
        root=state_root,
        on_start=collect_meanwhile,
    )
    assert (result.exit_code, result.stdout) == (0, b"alive\n")


def test_many_tasks_at_once_from_separate_processes(state_root: Path) -> None:
    procs = [
        subprocess.Popen([LXRUN, "exec", "--root", str(state_root), "--stack", "busybox", "--name", f"p{n}",
                          "--", "sh", "-c", f"sleep 0.3; echo {n}"], stdout=subprocess.PIPE, text=True)
        for n in range(8)
    ]  # fmt: skip
    outputs = [proc.communicate(timeout=30)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8
    assert outputs == [f"{n}\n" for n in range(8)]


def test_disk_caps_what_a_task_can_write(state_root: Path) -> None:
    fill = "dd if=/dev/zero of={} bs=1M count=32 2>&1 | grep -c 'No space left on device'"
    result = sh(
        state_root, f"{fill.format('/big')}; {fill.format('/tmp/big')}", disk=8 << 20, limits=Limits(memory=256 << 20)
    )
    assert (result.stdout or b"").split() == [b"1", b"1"], result.stdout
    assert subprocess.run(["true"]).returncode == 0


def test_hostile_tasks_never_change_a_layer(state_root: Path) -> None:
    from .test_exec import layer_digest

    before = layer_digest(state_root)
    for script in ("rm -rf / 2>/dev/null; true", "chmod -R 777 / 2>/dev/null; true",
                   "find / -xdev -type f -exec sh -c 'echo x >> {}' \\; 2>/dev/null; true",
                   "ln -sf /etc/passwd /bin/sh; mv /bin /gone; true"):  # fmt: skip
        sh(state_root, script, timeout=20)
    assert layer_digest(state_root) == before


@pytest.mark.parametrize("backend", ["lxc", "docker"])
def test_gc_releases_what_a_killed_runner_of_another_backend_left(state_root: Path, backend: str) -> None:
    from lxrun.backends import docker, lxc
    from lxrun.cgroups.discover import own_hierarchies
    from lxrun.cgroups.tree import TaskTree
    from lxrun.runtime import Runtime

    probe = Runtime(state_root).backend(backend).probe()
    require(probe.available, f"backend {backend}: {probe.reason}")
    marker = f"sleep 5{len(backend)}.25"
    proc = subprocess.Popen(
        [LXRUN, "exec", "--root", str(state_root), "--backend", backend, "--stack", "busybox", "-m", "64m",
         "--userns", "host", "--", "sh", "-c", f"echo up; exec {marker}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    ids = task_ids(state_root)
    proc.kill()
    proc.wait()
    released = gc(state_root)
    assert set(released.tasks) >= ids
    top = {"lxc": lxc.TOP, "docker": docker.TOP}[backend]
    hierarchies = own_hierarchies()
    if backend == "docker":
        hierarchies = [h.replace(own="/") for h in hierarchies]
    assert not any(TaskTree(task_id, hierarchies, top).exists() for task_id in ids)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).stdout == b""
    assert list((state_root / "run").iterdir()) == []
    assert not any((state_root / "lxc").glob("*")) if (state_root / "lxc").exists() else True
