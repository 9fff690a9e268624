"""The values Runtime's task and stack operations return, what `lxrun` re-exports lazily, and what each
backend refuses up front (Unsupported, before anything is made): no root, no kernel."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import lxrun
from lxrun.backends.docker import DockerBackend
from lxrun.backends.lxc import LxcBackend
from lxrun.backends.native import NativeBackend
from lxrun.errors import SpecError, Unsupported
from lxrun.layout import Layout
from lxrun.net.spec import BRIDGE, HOST, NetworkSpec
from lxrun.plan import TaskPlan, plan_task
from lxrun.recovery import Released
from lxrun.spec import TaskSpec
from lxrun.stacks_api import LayerInfo, StackDetails, StackVersion, pinned
from lxrun.store.stacks import ResolvedStack
from lxrun.tasks import RUNNING, UNREADABLE, TaskInfo

STACK = ResolvedStack("busybox", "1", ["base"], ["/layers/base"], {})


def test_an_unreadable_task_shows_only_its_id_and_state() -> None:
    assert TaskInfo("abc", UNREADABLE).to_json(with_record=True) == {"id": "abc", "state": "unreadable"}


def test_a_task_as_ps_and_inspect_show_it() -> None:
    record = {"id": "abc", "backend": "lxc", "pid": 7, "command": ["sh"], "state": "from the record"}
    task = TaskInfo("abc", RUNNING, "job", "busybox@1", 7, 1.5, 4096, 0.25, ("sh",), record)
    shown = task.to_json()
    assert list(shown) == ["id", "name", "stack", "pid", "age", "memory", "cpu", "state", "command"]
    assert shown["command"] == ["sh"] and shown["state"] == RUNNING
    inspected = task.to_json(with_record=True)
    assert inspected["backend"] == "lxc" and inspected["state"] == RUNNING  # live figures win over the record's
    with pytest.raises(TypeError):
        task.record["pid"] = 8  # type: ignore[index]
    with pytest.raises(AttributeError, match="immutable"):
        task.pid = 8  # type: ignore[misc]


def test_what_gc_released_and_whether_it_was_nothing() -> None:
    assert Released({}, ()).nothing
    released = Released({"abc": ("record run/abc.json",)}, ())
    assert not released.nothing and released.tasks["abc"] == ("record run/abc.json",)
    assert not Released({}, ("name job (its task is gone)",)).nothing


def test_stack_details_as_json() -> None:
    stack = StackVersion("py", "2", ["a", "b"], {"LANG": "C"}, {"team": "x"}, created=5.0, parent="base@1")
    layers = (LayerInfo("a", None, "base", "rootfs/base.toml", 10, 1.0), LayerInfo("b", "a", "diff", "s.toml", 5, 2.0))
    data = StackDetails(stack, True, layers, 15).to_json()
    assert data == {
        "name": "py",
        "version": "2",
        "current": True,
        "parent": "base@1",
        "created": 5.0,
        "env": {"LANG": "C"},
        "labels": {"team": "x"},
        "layers": [layer.as_dict() for layer in layers],
        "total": 15,
    }


def test_promote_and_rm_name_one_version() -> None:
    assert pinned("py@2") == ("py", "2")
    with pytest.raises(SpecError, match=r"^stack py: needs a version \(give NAME@VERSION, e\.g\. py@1\)$"):
        pinned("py")


def test_the_api_types_are_exported_lazily() -> None:
    for name, module in lxrun.LAZY.items():
        assert name in lxrun.__all__ and getattr(lxrun, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        lxrun.nothing_here  # noqa: B018
    probe = (
        "import sys, lxrun, lxrun.cli.exec_cmd; "
        "print(' '.join(m for m in ('lxrun.tasks', 'lxrun.stacks_api', 'lxrun.recovery', 'lxrun.backends.base')"
        " if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], "`lxrun exec` must not import the task and stack operations"


def plan(**kwargs: object) -> TaskPlan:
    return plan_task(TaskSpec(stack="busybox", argv=["true"], **kwargs), STACK, task_id="abc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("backend", "kwargs", "message"),
    [
        (LxcBackend, {"network": NetworkSpec(BRIDGE)}, "network: bridge is native's only; the lxc backend runs"),
        (LxcBackend, {"cgroup_parent": "/jobs"}, "cgroup_parent: the lxc backend nests its cgroups"),
        (LxcBackend, {"env": {"A": "x\ny"}}, "env A: contains a line break, which the lxc backend can't pass"),
        (DockerBackend, {"network": NetworkSpec(BRIDGE)}, "network: bridge is native's only; the docker backend"),
        (DockerBackend, {"keep": True}, "keep: the docker backend can't keep a task's upper dir"),
    ],
)
def test_a_backend_refuses_what_it_cant_honour(
    tmp_path: Path, backend: type[LxcBackend | DockerBackend], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(Unsupported, match=f"^{message}"):
        backend(Layout(tmp_path)).refuse(plan(**kwargs))
    assert list(tmp_path.iterdir()) == []  # nothing made
    NativeBackend(Layout(tmp_path)).refuse(plan(**kwargs))  # native honours them all


@pytest.mark.parametrize("backend", [LxcBackend, DockerBackend])
def test_a_backend_takes_what_it_can_honour(tmp_path: Path, backend: type[LxcBackend | DockerBackend]) -> None:
    backend(Layout(tmp_path)).refuse(plan(network=NetworkSpec(HOST), env={"A": "b c"}))


def test_unsupported_is_a_spec_error() -> None:
    assert issubclass(Unsupported, SpecError) and Unsupported.exit_code == 125
