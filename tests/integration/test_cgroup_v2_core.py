"""The v2 manager's core on a real cgroup2 hierarchy: placing processes, tasks born in their cgroup,
cgroup.kill, cgroup.events, cgroup.freeze, removal. On this hybrid host cgroup2 is mounted at
/sys/fs/cgroup/unified with no controllers, but these core files work; the controllers are proven in
the pure-v2 guest (make test-v2)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import pytest

from lxrun import TaskSpec
from lxrun.backends.base import TaskHandle
from lxrun.backends.native import NativeBackend
from lxrun.cgroups.discover import cgroup_mounts, own_cgroups
from lxrun.cgroups.v2 import V2Manager
from lxrun.layout import Layout
from lxrun.plan import plan_task
from lxrun.sandbox import helper
from lxrun.spec import Limits
from lxrun.state import task_cgroup_name
from lxrun.store.stacks import StackStore

from ..conftest import require

pytestmark = pytest.mark.v2


@pytest.fixture
def manager() -> V2Manager:
    require(os.geteuid() == 0, "needs root")
    _, mount = cgroup_mounts(Path("/proc/self/mountinfo").read_text())
    _, own = own_cgroups(Path("/proc/self/cgroup").read_text())
    require(mount is not None and own is not None, "no cgroup2 mount on this host")
    assert mount is not None and own is not None
    return V2Manager(mount, own)


def start_tree_in(procs_file: str, marker: str) -> subprocess.Popen[bytes]:
    """A shell that joins the cgroup, then leaves a setsid'd grandchild behind, as a task might."""
    script = f"echo 0 > {procs_file}; setsid sh -c 'exec sleep {marker}' & exec sleep {marker}"
    return subprocess.Popen(["sh", "-c", script])


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_kill_reaches_every_process_and_events_say_empty(manager: V2Manager) -> None:
    marker = "4242.5"
    with manager.create(f"lxrun-test-{os.getpid()}", Limits()) as task:
        events = Path(task.path) / "cgroup.events"
        shell = start_tree_in(task.join_files()[0], marker)
        wait_for(lambda: len(task.pids()) == 2)
        assert len(task.pids()) == 2
        assert "populated 1" in events.read_text()
        assert (Path(task.path) / "cgroup.kill").exists()
        task.kill_all()
        assert task.pids() == []
        assert "populated 0" in events.read_text()
        shell.wait(timeout=5)
    assert not Path(task.path).exists()
    assert subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).stdout == b""


def test_freeze_stops_the_tree(manager: V2Manager) -> None:
    with manager.create(f"lxrun-test-{os.getpid()}", Limits()) as task:
        shell = start_tree_in(task.join_files()[0], "4243.5")
        wait_for(lambda: len(task.pids()) == 2)
        (Path(task.path) / "cgroup.freeze").write_text("1")
        wait_for(lambda: "frozen 1" in (Path(task.path) / "cgroup.events").read_text())
        assert "frozen 1" in (Path(task.path) / "cgroup.events").read_text()
        states = {Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0] for pid in task.pids()}
        assert states <= {"S", "D", "t", "T"}  # frozen tasks sleep in the freezer
    shell.wait(timeout=5)
    assert not Path(task.path).exists()


def test_usage_without_controllers_is_unknown_not_zero(manager: V2Manager) -> None:
    with manager.create(f"lxrun-test-{os.getpid()}", Limits()) as task:
        usage = task.usage()
    controllers = (Path(manager.mount) / "cgroup.controllers").read_text().split()
    if "memory" not in controllers:
        assert usage.peak_memory is None and usage.oom_killed is False


def test_a_native_task_is_born_in_its_cgroup(manager: V2Manager, state_root: Path) -> None:
    # On v2 the helper clones the sandbox straight into the task's cgroup (clone3 CLONE_INTO_CGROUP):
    # no cgroup.procs is opened, so the task can only be in its cgroup if it was born there.
    assert helper.CAN_CLONE_INTO_CGROUP or platform.machine() != "x86_64"
    layout = Layout(state_root)
    members: list[list[int]] = []

    def on_start(handle: TaskHandle) -> None:
        task = manager.find(task_cgroup_name(handle.task_id))
        assert task is not None
        members.append(task.pids())

    spec = TaskSpec(stack="busybox", argv=["sh", "-c", "sleep 0.2; cat /proc/self/cgroup"])
    result = NativeBackend(layout, cgroups=manager).run(
        plan_task(spec, StackStore(layout).resolve("busybox")), on_start=on_start
    )
    assert result.exit_code == 0, result
    assert len(members) == 1 and len(members[0]) >= 1  # init (and its child) in the task's cgroup
    assert result.stdout is not None and result.stdout.decode().splitlines()[-1] == "0::/"  # its own cgroup ns
