"""Tasks in flight on a state root, for `Runtime`: list them with what they use now, find one by id,
id prefix or name, signal it, and gc what dead runners left (plus, asked, the layers nothing uses).

The task path never imports this module: `lxrun exec` pays nothing for it.
"""

from __future__ import annotations

import os
import time
from types import MappingProxyType

from lxrun.errors import LxrunError
from lxrun.record import Record
from lxrun.state import find_task, live_pid, records, runner_alive, task_cgroup_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from lxrun.backends.base import Backend
    from lxrun.cgroups.base import TaskCgroup
    from lxrun.layout import Layout
    from lxrun.recovery import Released
    from lxrun.store.gc import Collected

RUNNING = "running"
ORPHANED = "orphaned (lxrun gc releases it)"
UNREADABLE = "unreadable"


class TaskInfo(Record):
    """A task in flight: its record and live figures (None where unknown or gone): `memory` in bytes
    now, `cpu` seconds so far, `age` seconds since its record was written. `record` is None (and so is
    every figure) while the record can't be read."""

    __slots__ = ("age", "command", "cpu", "id", "memory", "name", "pid", "record", "stack", "state")
    id: str
    state: str
    name: str | None
    stack: str | None
    pid: int | None
    age: float | None
    memory: int | None
    cpu: float | None
    command: tuple[str, ...] | None
    record: Mapping[str, Any] | None

    def __init__(
        self,
        id: str,
        state: str,
        name: str | None = None,
        stack: str | None = None,
        pid: int | None = None,
        age: float | None = None,
        memory: int | None = None,
        cpu: float | None = None,
        command: tuple[str, ...] | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            id=id,
            state=state,
            name=name,
            stack=stack,
            pid=pid,
            age=age,
            memory=memory,
            cpu=cpu,
            command=command,
            record=MappingProxyType(dict(record)) if record is not None else None,
        )

    def to_json(self, with_record: bool = False) -> dict[str, Any]:
        """As `lxrun ps --json` shows it; `with_record`: under the record's own fields, as `lxrun inspect`."""
        if self.record is None:
            return {"id": self.id, "state": self.state}
        shown = {
            "id": self.id,
            "name": self.name,
            "stack": self.stack,
            "pid": self.pid,
            "age": self.age,
            "memory": self.memory,
            "cpu": self.cpu,
            "state": self.state,
            "command": list(self.command) if self.command is not None else None,
        }
        return {**self.record, **shown} if with_record else shown


class GcReport(Record):
    """What `Runtime.gc` released (or, `dry_run`, would release): the tasks of dead runners and what
    nothing uses any more; with `layers`, the unused layers (`Collected`; dry, none removed yet)."""

    __slots__ = ("dry_run", "layers", "released")
    dry_run: bool
    released: Released
    layers: Collected | None

    def __init__(self, dry_run: bool, released: Released, layers: Collected | None) -> None:
        super().__init__(dry_run=dry_run, released=released, layers=layers)


def task_info(task_id: str, data: dict[str, Any] | None) -> TaskInfo:
    if data is None:
        return TaskInfo(task_id, UNREADABLE)
    pid = live_pid(data)
    cgroup = _task_cgroup(task_id, data, pid)
    try:
        usage, memory = (cgroup.usage(), cgroup.current_memory()) if cgroup is not None else (None, None)
    except OSError:  # it ended while we looked
        usage, memory = None, None
    command = data.get("command")
    return TaskInfo(
        task_id,
        RUNNING if runner_alive(data) else ORPHANED,
        name=data.get("name"),
        stack=data.get("stack"),
        pid=pid,
        age=round(time.time() - data.get("created", time.time()), 1),
        memory=memory,
        cpu=round((usage.cpu_user or 0) + (usage.cpu_system or 0), 3) if usage else None,
        command=tuple(command) if isinstance(command, list) else None,
        record=data,
    )


def _task_cgroup(task_id: str, data: dict[str, Any], pid: int | None) -> TaskCgroup | None:
    """The cgroup its live pid 1 is in (any backend), or while it starts, the native task cgroup of its name."""
    from lxrun.cgroups import detect

    try:
        if pid is not None:
            return detect(cgroup_path=f"/proc/{pid}/cgroup").own_cgroup()
        return detect().find(task_cgroup_name(task_id), data.get("cgroup_parent"))
    except OSError:  # it ended while we looked
        return None


def list_tasks(layout: Layout) -> list[TaskInfo]:
    return [task_info(task_id, data) for task_id, data in records(layout)]


def inspect_task(layout: Layout, id_or_name: str) -> TaskInfo:
    return task_info(*find_task(layout, id_or_name))


def kill_task(layout: Layout, id_or_name: str, sig: int) -> str:
    """Signal the task's pid 1 (on every backend it passes the signal on to the task); returns its id."""
    task_id, data = find_task(layout, id_or_name)
    pid = live_pid(data)
    if pid is None:
        raise LxrunError("kill", "the task has no process to signal (starting or ending)", path=task_id)
    os.kill(pid, sig)
    return task_id


def gc(layout: Layout, backend: Callable[[str], Backend], dry_run: bool, layers: bool) -> GcReport:
    from lxrun.cgroups import detect
    from lxrun.recovery import collect

    released = collect(layout, detect(), backend, dry_run)
    return GcReport(dry_run, released, _unused_layers(layout, dry_run) if layers else None)


def _unused_layers(layout: Layout, dry_run: bool) -> Collected:
    from lxrun.store.gc import Collected, collect_layers, held_layers
    from lxrun.store.layers import LayerStore

    if not dry_run:
        return collect_layers(layout)
    store = LayerStore(layout)
    unused = sorted(set(store.digests()) - held_layers(layout))
    return Collected(tuple(unused), sum(store.info(digest).size for digest in unused), ())
