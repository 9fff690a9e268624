"""`lxrun gc` for tasks: find the records of tasks whose runner is gone and release what they held.

Everything a task holds on the host is named after its id (its cgroups, kept/<id>/work, its --name
link), so a record, even one torn by a crash mid-write, is enough to find it all: the backend named
in it releases its own (a record too torn to name one is native's, the backend that writes most).
Tasks whose runner still runs are never touched; gc is idempotent and safe while other tasks run.
"""

from __future__ import annotations

import contextlib
import os
import time
from types import MappingProxyType

from lxrun.record import Record
from lxrun.state import records, runner_alive

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from lxrun.backends.base import Backend
    from lxrun.cgroups import CgroupManager
    from lxrun.layout import Layout

UNREADABLE_GRACE = 5.0  # seconds: a record this young may still be being written by a live runner
DEFAULT_BACKEND = "native"


class Released(Record):
    """What gc released (or, dry, would release): per dead runner's task, in the order released, and
    what no task owns any more (names whose task is gone, idle cgroup parents, network parts)."""

    __slots__ = ("other", "tasks")
    tasks: Mapping[str, tuple[str, ...]]
    other: tuple[str, ...]

    def __init__(self, tasks: Mapping[str, tuple[str, ...]], other: tuple[str, ...]) -> None:
        super().__init__(tasks=MappingProxyType(dict(tasks)), other=other)

    @property
    def nothing(self) -> bool:
        return not self.tasks and not self.other


def _stale(layout: Layout, task_id: str, data: dict[str, Any] | None) -> bool:
    if data is not None:
        return not runner_alive(data)
    try:
        age = time.time() - os.stat(layout.task(task_id)).st_mtime
    except FileNotFoundError:
        return False
    return age > UNREADABLE_GRACE


def collect(
    layout: Layout, cgroups: CgroupManager, backend: Callable[[str], Backend], dry_run: bool = False
) -> Released:
    """Release every task whose runner is gone, each through `backend(its backend's name)`, then the
    names, cgroup parents and network parts nothing uses."""
    tasks: dict[str, tuple[str, ...]] = {}
    for task_id, data in records(layout):
        if _stale(layout, task_id, data) and os.path.exists(layout.task(task_id)):
            name = str(data.get("backend", DEFAULT_BACKEND)) if data else DEFAULT_BACKEND
            tasks[task_id] = tuple(backend(name).release_leftovers(task_id, data, dry_run))
    other = []
    for name in sorted(os.listdir(layout.names)) if os.path.isdir(layout.names) else []:
        link = f"{layout.names}/{name}"
        holder = os.readlink(link) if os.path.islink(link) else None
        if holder is None or not os.path.exists(layout.task(holder)):
            other.append(f"name {name} (its task is gone)")
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(link)
    idle = cgroups.idle_parents() if dry_run else cgroups.remove_idle_parents()
    other += [f"idle cgroup {path}" for path in idle]
    if os.path.isdir(layout.net):
        from lxrun.net.gc import gc_network  # bridge networking was used on this state root

        net = gc_network(layout, dry_run=dry_run)
        other += [f"veth {v}" for v in net.veths] + [f"address lease {a}" for a in net.leases]
        other += [f"{net.elements} published-port rules"] if net.elements else []
        other += list(net.shared)
    return Released(tasks, tuple(other))
