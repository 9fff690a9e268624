"""Nothing outlives a task, whatever way it ends (the autouse fixture checks after every test)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from lxrun import TaskSpec
from lxrun.backends.base import TaskHandle
from lxrun.cgroups.discover import own_hierarchies
from lxrun.errors import CommandNotFound, LxrunError, SpecError, Unsupported
from lxrun.spec import Limits, Volume

from .conftest import differs, run, sh


def test_a_background_process_dies_with_the_task(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, "sleep 60 & setsid sleep 60 & echo started")
    assert result.stdout == b"started\n"


def test_interrupted_while_running(backend: str, state_root: Path) -> None:
    def interrupt(_handle: TaskHandle) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(TaskSpec(stack="busybox", argv=["sleep", "60"]), backend=backend, root=state_root, on_start=interrupt)


def test_a_failed_start(backend: str, state_root: Path) -> None:
    with pytest.raises(CommandNotFound):
        run(TaskSpec(stack="busybox", argv=["no-such-tool"]), backend=backend, root=state_root)


def test_bad_input_creates_nothing(backend: str, state_root: Path) -> None:
    with pytest.raises(SpecError, match="source does not exist"):
        run(
            TaskSpec(stack="busybox", argv=["true"], volumes=[Volume("/nonexistent/x", "/x")]),
            backend=backend,
            root=state_root,
        )


def test_a_signal_reaches_the_task(backend: str, state_root: Path, volume_dir: Path) -> None:
    ready = volume_dir / "ready"
    script = "trap 'echo got; exit 7' TERM; touch /shared/ready; sleep 60 & wait"
    volumes = [Volume(str(volume_dir), "/shared")]
    spec = TaskSpec(stack="busybox", argv=["sh", "-c", script], volumes=volumes, timeout=60)  # bounded if it hangs
    handles: list[TaskHandle] = []

    def send_when_ready() -> None:
        deadline = time.monotonic() + 30
        while not (handles and ready.exists()):  # the trap is set once the task made the file
            if time.monotonic() > deadline:
                return  # the task never got ready: the assertion below says so
            time.sleep(0.01)
        handles[0].send_signal(signal.SIGTERM)

    sender = threading.Thread(target=send_when_ready)
    sender.start()
    result = run(spec, backend=backend, root=state_root, on_start=handles.append)
    sender.join()
    assert (result.stdout, result.exit_code) == (b"got\n", 7)


def test_a_workdir_that_is_a_file_fails_before_the_task_runs(backend: str, state_root: Path) -> None:
    with pytest.raises(LxrunError) as info:
        run(TaskSpec(stack="busybox", argv=["true"], workdir="/etc/passwd"), backend=backend, root=state_root)
    assert info.value.exit_code == 125
    if backend != "docker":  # Docker's words are its own: "... not a directory ..."
        assert str(info.value).startswith("workdir /etc/passwd: Not a directory")
    else:
        assert "not a directory" in str(info.value)


def test_a_cgroup_parent_holds_the_tasks_cgroups_and_gets_them_back(
    backend: str, state_root: Path, request: pytest.FixtureRequest
) -> None:
    differs(request, backend, {"lxc": "the lxc backend nests its cgroups under lxrun's own"}, raises=Unsupported)
    parents = [f"{hierarchy.mount}/lxrun-test-parent" for hierarchy in own_hierarchies()]
    for parent in parents:
        os.mkdir(parent)
    try:
        spec = TaskSpec(
            stack="busybox", argv=["true"], limits=Limits(memory=64 << 20), cgroup_parent="/lxrun-test-parent"
        )
        assert run(spec, backend=backend, root=state_root).exit_code == 0
        left = [entry.path for parent in parents for entry in os.scandir(parent) if entry.is_dir()]
        assert left == []
    finally:
        for parent in parents:
            os.rmdir(parent)
