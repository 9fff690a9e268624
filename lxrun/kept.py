"""Upper dirs kept with --keep (`<root>/kept/<task-id>/upper`), for `Runtime`: list them with their size
and age, remove one or all. A task still running keeps its own: it is never removed under it."""

from __future__ import annotations

import os
import shutil
import time

from lxrun.errors import LxrunError, SpecError
from lxrun.record import Record
from lxrun.state import read_record, runner_alive

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.layout import Layout


class KeptDir(Record):
    """One task's kept writes: `path` is its upper dir, `size` the bytes in it, `age` seconds since
    the task began keeping it; `running` while its task still runs."""

    __slots__ = ("age", "id", "path", "running", "size")
    id: str
    path: str
    size: int
    age: float
    running: bool

    def __init__(self, id: str, path: str, size: int, age: float, running: bool) -> None:
        super().__init__(id=id, path=path, size=size, age=age, running=running)


def _running(layout: Layout, task_id: str) -> bool:
    data = read_record(layout.task(task_id))
    return data is not None and runner_alive(data)


def _size(path: str) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(f"{directory}/{name}").st_size
            except FileNotFoundError:  # its task still writes
                continue
    return total


def kept_dirs(layout: Layout) -> list[KeptDir]:
    try:
        ids = sorted(os.listdir(layout.kept))
    except FileNotFoundError:
        return []
    found = []
    for task_id in ids:
        path = layout.kept_task(task_id)
        try:
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:  # removed while we looked
            continue
        found.append(KeptDir(task_id, f"{path}/upper", _size(path), round(age, 1), _running(layout, task_id)))
    return found


def remove_kept(layout: Layout, task_id: str) -> str:
    """Remove the kept dir of `task_id` (not while its task runs); returns its path."""
    if not task_id or "/" in task_id or task_id in (".", ".."):
        raise SpecError("kept", "is not a task id", path=repr(task_id), hint="see `lxrun kept ls`")
    path = layout.kept_task(task_id)
    if not os.path.isdir(path):
        raise LxrunError("kept", "no kept dir of that task", path=task_id, hint="see `lxrun kept ls`")
    if _running(layout, task_id):
        raise LxrunError("kept", "its task is still running", path=task_id, hint="wait for it to end")
    shutil.rmtree(path)
    return path
