"""The Runtime's task and stack operations, called for real: what `lxrun ps/inspect/kill/gc/stack/df`
print is made of these values."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lxrun import Runtime, TaskSpec
from lxrun.backends.base import TaskHandle
from lxrun.errors import LxrunError, SpecError, StoreError
from lxrun.layout import Layout
from lxrun.store.bases import build_base
from lxrun.store.specs import find_spec, load_base_spec
from lxrun.tasks import ORPHANED, RUNNING

from .conftest import LXRUN
from .stacktools import specs_env, write_stack


def test_ps_inspect_and_kill_a_task_running_on_a_thread(state_root: Path) -> None:
    runtime = Runtime(state_root)
    script = "trap 'exit 9' TERM; echo up; while :; do sleep 0.05; done"
    read_end, write_end = os.pipe()
    spec = TaskSpec(stack="busybox", argv=["sh", "-c", script], name="api-victim", stdout=write_end)
    started: list[TaskHandle] = []  # on_start runs once the record names the task's pid 1
    with ThreadPoolExecutor(1) as pool, os.fdopen(read_end) as output:
        future = pool.submit(runtime.run, spec, on_start=started.append)
        try:
            assert output.readline() == "up\n"  # the trap is set
            deadline = time.monotonic() + 10
            while not started and time.monotonic() < deadline:
                time.sleep(0.01)
            [task] = runtime.ps()
            assert (task.name, task.stack, task.state, task.command) == ("api-victim", "busybox@1", RUNNING, spec.argv)
            assert task.pid is not None and task.memory is not None and task.memory > 0
            assert task.record is not None and task.record["runner_pid"] == os.getpid()
            assert runtime.inspect(task.id[:6]).id == task.id
            inspected = runtime.inspect("api-victim").to_json(with_record=True)
            assert inspected["backend"] == "native" and inspected["state"] == RUNNING
            assert runtime.kill("api-victim", signal.SIGTERM) == task.id
        except BaseException:
            if started:
                started[0].send_signal(signal.SIGKILL)  # a failed assertion must not leave the task running
            raise
        finally:
            os.close(write_end)
            result = future.result(timeout=10)
    assert result.exit_code == 9
    assert runtime.ps() == []
    with pytest.raises(LxrunError, match=r"^task api-victim: no such task in flight"):
        runtime.kill("api-victim", signal.SIGTERM)


def test_gc_releases_the_task_of_a_dead_runner(state_root: Path) -> None:
    runtime = Runtime(state_root)
    killed = subprocess.run(
        [LXRUN, "exec", "--root", str(state_root), "--stack", "busybox", "--name", "api-orphan", "--", "sleep", "30"],
        env={**os.environ, "LXRUN_FAULT": "running"},
        capture_output=True,
        timeout=30,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    time.sleep(0.2)  # the parent-death signal reaches the sandbox's pid 1
    [task] = runtime.ps()
    assert (task.name, task.state) == ("api-orphan", ORPHANED)
    record = f"{state_root}/run/{task.id}.json"

    dry = runtime.gc(dry_run=True)
    assert dry.dry_run and dry.layers is None
    assert list(dry.released.tasks) == [task.id] and f"record {record}" in dry.released.tasks[task.id]
    assert os.path.exists(record) and (state_root / "names" / "api-orphan").is_symlink()

    report = runtime.gc()
    assert report.released.tasks[task.id][-2:] == ("name api-orphan", f"record {record}")
    assert not os.path.exists(record) and not (state_root / "names" / "api-orphan").exists()
    assert runtime.ps() == []
    assert runtime.gc().released.nothing


@pytest.fixture
def fresh_root(tmp_path_factory: pytest.TempPathFactory, native_ready: None) -> Path:
    root = tmp_path_factory.mktemp("lxrun-api")
    build_base(load_base_spec(find_spec("rootfs", "busybox")), Layout(root))
    return root


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "specs"
    monkeypatch.setenv("LXRUN_SPECS", specs_env(directory))
    return directory


@pytest.fixture
def devnull() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


def test_stacks_build_list_promote_rollback_remove(fresh_root: Path, specs: Path, devnull: int) -> None:
    runtime = Runtime(fresh_root)
    base = runtime.build_base("busybox", log_fd=devnull)  # built by the fixture: unchanged
    assert (base.ref, len(base.layers)) == ("busybox@1", 1)
    steps: list[str] = []
    built = []
    for version in ("1", "2"):
        write_stack(specs, "api", version=version, run=[f"echo {version} > /v"])
        built.append(runtime.build_stack("api", log_fd=devnull, report=steps.append))
    assert [(b.version.ref, b.built) for b in built] == [("api@1", True), ("api@2", True)]
    assert built[1].version.layers[0] == base.layers[0] and steps
    assert runtime.build_stack("api", log_fd=devnull).built is False  # same spec: a no-op

    listing = [(cost.version.ref, cost.current, len(cost.layers)) for cost in runtime.stack_versions()]
    assert listing == [("api@1", False, 2), ("api@2", True, 2), ("busybox@1", True, 1)]

    details = runtime.inspect_stack("api@1")
    assert (details.stack.parent, details.current, [i.kind for i in details.layers]) == (
        "busybox@1",
        False,
        ["base", "diff"],
    )
    assert details.total == sum(info.size for info in details.layers) == details.to_json()["total"]

    switched = runtime.promote("api@1")
    assert (switched.name, switched.current, switched.previous) == ("api", "1", "2")
    assert runtime.run(TaskSpec(stack="api", argv=["cat", "/v"])).stdout == b"1\n"
    assert runtime.rollback("api").as_dict() == {"name": "api", "current": "2", "previous": "1"}
    with pytest.raises(SpecError, match=r"^stack api: needs a version"):
        runtime.promote("api")
    with pytest.raises(StoreError, match="is the current version"):
        runtime.remove_stack("api@2")

    usage = runtime.df()
    assert [cost.version.ref for cost in usage.stacks] == ["api@2", "busybox@1"]
    assert usage.as_layers < usage.flattened  # the base is stored once for both

    assert runtime.remove_stack("api@1") == "api@1"
    collected = runtime.gc(dry_run=True, layers=True).layers
    assert collected is not None and collected.layers == (built[0].version.layers[1],) and collected.bytes > 0
    report = runtime.gc(layers=True)
    assert report.layers == collected  # the same layer, now removed
    assert not (fresh_root / "layers" / collected.layers[0]).exists()
