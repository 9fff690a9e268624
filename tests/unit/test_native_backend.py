"""The native backend's logic through a fake helper: what it asks the helper for, what it makes of the
outcome, and that it releases everything it acquired, on success and on failure. No root needed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lxrun.backends.native import NativeBackend
from lxrun.cgroups.null import NullManager
from lxrun.errors import ChildSetupError
from lxrun.layout import Layout
from lxrun.plan import plan_task
from lxrun.sandbox import mounts
from lxrun.sandbox.userns import RANGE, IdPool, take_range
from lxrun.spec import CAPTURE, Security, TaskSpec, Volume
from lxrun.store.stacks import ResolvedStack

from .fake_helper import FakeHelper

POOL = IdPool(uid_start=2_000_000, gid_start=3_000_000, ranges=4)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "root")
    layout.ensure()
    return layout


def stack(tmp_path: Path) -> ResolvedStack:
    layers = [tmp_path / "base", tmp_path / "diff"]
    for layer in layers:
        layer.mkdir(exist_ok=True)
    return ResolvedStack("test", "1", ["b" * 64, "d" * 64], [str(layer) for layer in layers], {"STACK": "1"})


def run(layout: Layout, tmp_path: Path, helper: FakeHelper, **fields: object) -> tuple[object, NativeBackend]:
    backend = NativeBackend(layout, cgroups=NullManager(), id_pool=POOL, spawn=helper)
    spec = TaskSpec(**{"stack": "test", "argv": ["sh", "-c", "echo out; exit 3"], "stdout": CAPTURE, **fields})
    return backend.run(plan_task(spec, stack(tmp_path))), backend


def left_behind(layout: Layout) -> list[str]:
    """What a finished task must not leave: records, names, kept work dirs, held uid ranges."""
    found = [f"run/{name}" for name in os.listdir(layout.run)] + [f"names/{n}" for n in os.listdir(layout.names)]
    found += [f"kept/{task}/work" for task in os.listdir(layout.kept) if os.path.exists(f"{layout.kept}/{task}/work")]
    return found


def test_the_result_is_the_process_outcome_and_nothing_is_left(layout: Layout, tmp_path: Path) -> None:
    helper = FakeHelper()
    result, _ = run(layout, tmp_path, helper, name="t1")
    assert (result.exit_code, result.stdout, result.name, result.stack) == (3, b"out\n", "t1", "test@1")
    assert left_behind(layout) == []


def test_the_request_overlays_the_layers_in_a_private_user_namespace(layout: Layout, tmp_path: Path) -> None:
    helper = FakeHelper()
    volume = tmp_path / "data"
    volume.mkdir()
    run(layout, tmp_path, helper, volumes=[Volume(str(volume), "/data", read_only=True)], workdir="/data")
    request = helper.last
    assert request.namespaces == {"mount", "pid", "uts", "ipc", "user"}
    host_uid = int(request.uid_map.split()[1])
    assert POOL.uid_start <= host_uid < POOL.uid_start + POOL.ranges * RANGE and request.uid_map.split()[2] == "65536"
    overlay = next(step for step in request.host_steps if step.what == "overlay root")
    lowers = [f"{layout.scratch}/lower1", f"{layout.scratch}/lower0"]  # idmapped binds of the layers, top first
    assert overlay.data.startswith(f"lowerdir={':'.join(lowers)},upperdir={layout.scratch}/upper")
    idmapped = [step.source for step in request.host_steps if "idmap" in step.attrs]
    assert idmapped == [str(tmp_path / "base"), str(tmp_path / "diff"), str(volume)]  # the volume too
    targets = [step.target for step in request.steps]
    assert targets.index("/etc/hosts") < targets.index("/data") < len(targets) - 2  # volumes over the task's files
    assert request.steps[-2] == mounts.workdir_step("/data") and request.steps[-1] == mounts.PIVOT
    move = request.steps[targets.index("/data")]
    staged = next(step for step in request.host_steps if step.op == mounts.HOST_VOLUME)
    assert (move.op, move.source) == (mounts.MOVE, staged.target)
    assert (staged.source, staged.attrs) == (str(volume), {"ro", "idmap"})
    assert (request.cwd, request.network, request.env["STACK"]) == ("/data", "new", "1")
    assert request.seccomp is not None and "SYS_ADMIN" not in (request.caps or ())


def test_userns_host_runs_without_a_user_namespace(layout: Layout, tmp_path: Path) -> None:
    helper = FakeHelper()
    volume = tmp_path / "data"
    volume.mkdir()
    security = Security(userns="host", seccomp="unconfined")
    run(layout, tmp_path, helper, security=security, volumes=[Volume(str(volume), "/data")])
    assert any(step.op == mounts.HOST_VOLUME for step in helper.last.host_steps)
    assert "user" not in helper.last.namespaces and helper.last.uid_map is None and helper.last.seccomp is None
    assert not any("idmap" in step.attrs for step in helper.last.host_steps)


def test_a_failed_child_setup_releases_everything(layout: Layout, tmp_path: Path) -> None:
    helper = FakeHelper(fail=ChildSetupError.from_errno("mount /proc", 13, "/proc"))
    with pytest.raises(ChildSetupError, match=r"^mount /proc /proc: Permission denied"):
        run(layout, tmp_path, helper, name="doomed", keep=True)
    assert left_behind(layout) == []
    # The uid range it leased is free again: asking for that range gets it.
    uid = int(helper.last.uid_map.split()[1])
    with take_range(layout, POOL, (uid - POOL.uid_start) // RANGE) as lease:
        assert lease.range.uid == uid


def test_keep_puts_the_upper_dir_on_disk_and_reports_it(layout: Layout, tmp_path: Path) -> None:
    helper = FakeHelper()
    result, _ = run(layout, tmp_path, helper, keep=True)
    kept = layout.kept_task(result.task_id)
    overlay = next(step for step in helper.last.host_steps if step.what == "overlay root")
    assert f"upperdir={kept}/upper,workdir={kept}/work" in overlay.data
    assert result.upper_dir == f"{kept}/upper" and os.path.isdir(result.upper_dir)
    assert left_behind(layout) == []  # overlayfs's work dir went


def test_a_timeout_terminates_the_task(layout: Layout, tmp_path: Path) -> None:
    helper = FakeHelper()
    result, _ = run(layout, tmp_path, helper, argv=["sleep", "30"], timeout=0.2, stop_timeout=5)
    assert result.timed_out and result.signal == signal.SIGTERM and result.exit_code == 128 + signal.SIGTERM
    assert left_behind(layout) == []


def test_host_steps_are_built_once_and_each_task_names_its_own_root(layout: Layout, tmp_path: Path) -> None:
    helper = FakeHelper()
    backend = NativeBackend(layout, cgroups=NullManager(), id_pool=POOL, spawn=helper)
    for _ in range(2):
        backend.run(plan_task(TaskSpec(stack="test", argv=["true"]), stack(tmp_path)))
    first, second = helper.requests
    assert first.shared_host_steps is not None and first.shared_host_steps is second.shared_host_steps
    assert first.shared_host_steps.starts(first.host_steps) and first.shared_host_steps.starts(second.host_steps)
    # The files the task's root owns stand for it; each request says whose uid that is this time.
    owned = {step.what for step in first.host_steps if step.owner == mounts.TASK_ROOT}
    assert {"task tmpfs", "task /dev", "/dev/null", "write /etc/hosts"} <= owned
    assert [request.root_owner for request in (first, second)] == [
        int(request.uid_map.split()[1]) for request in (first, second)
    ]
    assert first.root_owner != second.root_owner  # the composer spreads tasks over the pool
    backend.run(plan_task(TaskSpec(stack="test", argv=["true"], keep=True), stack(tmp_path)))
    assert helper.last.shared_host_steps is None  # its upper dir is its own
