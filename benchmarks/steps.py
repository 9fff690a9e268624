"""Where one task's start-to-exit goes: `lxrun.run` of `true` split into its steps, p50 per step.

    python benchmarks/steps.py [--rounds 300] [--in-flight 200]

Timed from outside lxrun, in this process: the native backend's real functions are wrapped so that
each records when it starts and ends (NativeBackend.run, the cgroup manager's create, the spawn seam,
wait, usage, the cgroup's release), together with the steps lxrun.faults already marks (record,
stdio, uid-range, cgroup, collected, released). A step is the time between two consecutive marks, so
the steps of a task add up to its start-to-exit; a mark that a run does not reach (a step moved off
the caller's thread, say) merges its step into the next. The helper's own stages come from its clock
readings (SandboxProcess.marks).

Three cases: the real task; "Python's share", the same path with the helper call stubbed (a pid 1
that has already exited when spawn returns), so what remains is lxrun's own Python and the host
work it does per task (record, lease, cgroup, result); and the real task again with `--in-flight`
long `sleep` tasks running (scale.py's sleepers), to show which steps grow with the work in flight.
Prints markdown tables and writes benchmarks/results/steps.json. Runs in a private mount namespace, as startup.py does.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from common import Sleepers, bench_root, in_private_mount_namespace, machine, percentile, table, write_json

from lxrun import TaskSpec, faults
from lxrun.backends import native
from lxrun.cgroups.base import CgroupManager, TaskCgroup
from lxrun.cgroups.v1 import V1Manager, V1TaskCgroup
from lxrun.cgroups.v2 import V2Manager, V2TaskCgroup
from lxrun.runtime import Runtime
from lxrun.sandbox import helper

# (step, the mark that ends it), in the order a task passes them; the first starts at the call.
STEPS = (
    ("plan (defaults, stack, plan_task)", "backend.run"),
    ("task record", "fault:record"),
    ("name, stdio", "fault:stdio"),
    ("uid range lease", "fault:uid-range"),
    ("cgroup create", "fault:cgroup"),
    ("request (cgroup entry, mount steps, seccomp)", "spawn"),
    # The helper's own clock readings (SandboxProcess.marks), when the real one runs.
    ("request into C", "helper:called"),
    ("helper: stage 1 cloned", "helper:stage1"),
    ("helper: stage 1 joins cgroups, network; stage 2 cloned (namespaces)", "helper:stage2"),
    ("helper: id maps, stage 1's host steps (overlay, /dev)", "helper:go"),
    ("helper: stage 2's mounts (/proc, /dev, cgroup view, masks)", "helper:pivot"),
    ("helper: pivot_root, old root detached", "helper:pivoted"),
    ("helper: user, capabilities, fds, seccomp", "helper:exec"),
    ("helper: init exec'd, back in the caller", "helper:returned"),
    ("spawn returns", "spawn.end"),
    ("record pid 1", "wait"),
    ("wait (task runs and exits)", "wait.end"),
    ("usage read", "usage.end"),
    ("output", "fault:collected"),
    ("pid 1 released", "cgroup.exit"),
    ("cgroup kill and rmdir", "cgroup.exit.end"),
    ("uid range, stdio, name released", "fault:released"),
    ("record removed, Result", "end"),
)


class Marks:
    """Mark times of the task running on the recording thread; other threads' calls are not marked."""

    def __init__(self) -> None:
        self.thread: int | None = None
        self.times: dict[str, float] = {}

    def mark(self, name: str, at: float | None = None) -> None:
        """`name` reached now, or `at` (a time.perf_counter() reading: CLOCK_MONOTONIC, as the helper's)."""
        if threading.get_ident() == self.thread:
            self.times.setdefault(name, time.perf_counter() if at is None else at)

    @contextlib.contextmanager
    def task(self) -> Iterator[dict[str, float]]:
        self.thread, self.times = threading.get_ident(), {}
        self.mark("start")
        try:
            yield self.times
        finally:
            self.mark("end")
            self.thread = None


def timed(marks: Marks, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, marking `name` when called and `name`.end when it returns."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        marks.mark(name)
        try:
            return function(*args, **kwargs)
        finally:
            marks.mark(f"{name}.end")

    return wrapper


@contextlib.contextmanager
def instrumented(marks: Marks) -> Iterator[None]:
    """lxrun's native path with every mark of STEPS wired in; all restored on the way out."""
    point = faults.point
    with contextlib.ExitStack() as patches:

        def patch(owner: object, attribute: str, name: str) -> None:
            patches.enter_context(mock.patch.object(owner, attribute, timed(marks, name, getattr(owner, attribute))))

        patch(native.NativeBackend, "run", "backend.run")
        patch(native, "wait", "wait")
        for manager in (CgroupManager, V1Manager, V2Manager):
            patch(manager, "create", "cgroup.create")
        for cgroup in (TaskCgroup, V1TaskCgroup, V2TaskCgroup):
            patch(cgroup, "usage", "usage")
        patch(TaskCgroup, "__exit__", "cgroup.exit")

        def marked_point(step: str) -> None:
            marks.mark(f"fault:{step}")
            point(step)

        patches.enter_context(mock.patch.object(faults, "point", marked_point))
        yield


class ExitedProcess(helper.SandboxProcess):
    """A pid 1 that has already exited with status 0: its 'pidfd' is a pipe whose writer is closed."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        os.close(write_end)
        super().__init__(os.getpid(), read_end, -1)

    def send_signal(self, sig: int) -> None:
        """Nothing runs."""

    def reap(self) -> int:
        return 0

    def close(self) -> None:
        os.close(self.pidfd)


def marked_helper(marks: Marks) -> Callable[[helper.SpawnRequest], helper.SandboxProcess]:
    """The real helper, its own clock readings added to the marks."""

    def spawn(request: helper.SpawnRequest) -> helper.SandboxProcess:
        process = helper.spawn(request)
        for name, at in zip(helper.SPAWN_MARKS, process.marks, strict=True):
            if at:
                marks.mark(f"helper:{name}", at / 1e9)
        return process

    return spawn


def no_helper(request: helper.SpawnRequest) -> helper.SandboxProcess:
    """The spawn seam stubbed, as tests/unit/fake_helper.py does, but starting nothing at all."""
    return ExitedProcess()


def runtime_with(root: Path, spawn: Callable[[helper.SpawnRequest], helper.SandboxProcess]) -> Runtime:
    """A Runtime whose native backend starts sandboxes through `spawn`, wrapped to mark the call."""
    runtime = Runtime(root)
    # The backend's spawn seam is a constructor argument: set the backend the Runtime would make itself.
    runtime._backends["native"] = native.NativeBackend(runtime.layout, spawn=spawn)
    return runtime


def breakdown(runtime: Runtime, marks: Marks, rounds: int, warmup: int = 10) -> list[dict[str, float]]:
    """Mark times of `rounds` tasks (after `warmup` unmarked ones), each relative to its call."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    spec = TaskSpec(stack="busybox", argv=["true"], stdout=devnull, stderr=devnull)
    runs = []
    try:
        for number in range(warmup + rounds):
            with marks.task() as times:
                result = runtime.run(spec)
            if result.exit_code != 0:
                raise RuntimeError(f"lxrun task failed: {result}")
            if number >= warmup:
                runs.append({name: at - times["start"] for name, at in times.items()})
    finally:
        os.close(devnull)
    return runs


def step_times(run: dict[str, float]) -> dict[str, float]:
    """Each step's duration in one run: from the last mark reached before its own to its own."""
    durations, previous = {}, 0.0
    for step, mark in STEPS:
        if mark in run:
            durations[step], previous = run[mark] - previous, run[mark]
    return durations


def summarize(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """p50/p99 ms of every step (of the runs that reached its mark) and of the total."""
    per_step: dict[str, list[float]] = {}
    for run in runs:
        for step, duration in step_times(run).items():
            per_step.setdefault(step, []).append(duration)
    per_step["total (start-to-exit)"] = [run["end"] for run in runs]
    summary = {}
    for step, samples in per_step.items():
        ordered = sorted(samples)
        summary[step] = {
            "runs": len(ordered),
            "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(percentile(ordered, 99) * 1000, 3),
        }
    return summary


def render(cases: dict[str, dict[str, dict[str, float]]]) -> str:
    names = list(cases)
    steps = [step for step, _ in STEPS] + ["total (start-to-exit)"]
    rows = []
    for step in steps:
        cells = [step]
        for name in names:
            figures = cases[name].get(step)
            cells.append(f"{figures['p50_ms']:.3f} / {figures['p99_ms']:.2f}" if figures else "-")
        rows.append(tuple(cells))
    return table(rows, ("step", *(f"{name}: p50 / p99 ms" for name in names)))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed tasks per case")
    parser.add_argument("--in-flight", type=int, default=200, help="long tasks running for the loaded case (0: none)")
    args = parser.parse_args()
    in_private_mount_namespace()
    marks = Marks()
    cases: dict[str, dict[str, dict[str, float]]] = {}
    with bench_root() as root, instrumented(marks):
        spawn = timed(marks, "spawn", marked_helper(marks))
        stubbed = timed(marks, "spawn", no_helper)
        for name, runtime in (("task", runtime_with(root, spawn)), ("helper stubbed", runtime_with(root, stubbed))):
            cases[name] = summarize(breakdown(runtime, marks, args.rounds))
        if args.in_flight:
            runtime = runtime_with(root, spawn)
            sleepers = Sleepers(runtime)
            try:
                error = sleepers.add(args.in_flight)
                if error is not None:
                    raise RuntimeError(f"{len(sleepers.handles)} tasks in flight, the next failed: {error}")
                cases[f"task, {args.in_flight} in flight"] = summarize(breakdown(runtime, marks, args.rounds))
            finally:
                sleepers.stop()
    print(render(cases))
    share = cases["helper stubbed"]["total (start-to-exit)"]
    print(f"\nPython's share (the path with the helper stubbed): p50 {share['p50_ms']:.3f} ms a task")
    path = write_json("steps", {"machine": machine(), "rounds": args.rounds, "cases": cases})
    print(f"written {path}")


if __name__ == "__main__":
    main()
