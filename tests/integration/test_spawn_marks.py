"""The helper's own clock readings of a spawn (SandboxProcess.marks), which benchmarks break start-up
down by: every point reached, in order, within the caller's call."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from lxrun import TaskSpec
from lxrun.runtime import Runtime
from lxrun.sandbox import helper


def test_a_spawn_marks_each_point_in_order(state_root: Path) -> None:
    runtime = Runtime(state_root)
    composer = runtime.backend("native").composer
    spawned: list[helper.SandboxProcess] = []
    spawn = composer._spawn

    def spawn_and_keep(request: helper.SpawnRequest) -> helper.SandboxProcess:
        spawned.append(spawn(request))
        return spawned[-1]

    composer._spawn = spawn_and_keep
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        before = time.monotonic_ns()
        assert runtime.run(TaskSpec(stack="busybox", argv=["true"], stdout=devnull)).exit_code == 0
        after = time.monotonic_ns()
    finally:
        os.close(devnull)
    marks = spawned[0].marks
    assert len(marks) == len(helper.SPAWN_MARKS)
    assert before < marks[0] and marks[-1] < after
    assert all(earlier < later for earlier, later in itertools.pairwise(marks)), marks
