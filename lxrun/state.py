"""Task records, run/<task-id>.json: written before a task acquires anything, rewritten in place as it
goes, removed last. A record whose runner is gone names everything `lxrun gc` must release.

Host resources get names derived from the task id (cgroup `lxrun-<id>`, `kept/<id>`), so the first
write already covers them; later updates add what only exists afterwards (the sandbox's pid).
Names given with --name are claimed in names/ and refused while another live task holds them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time

from lxrun import faults
from lxrun import plainjson as json
from lxrun.errors import LxrunError, SetupError, SpecError, host_errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from lxrun.layout import Layout
    from lxrun.plan import TaskPlan

_own_start: int | None = None


def process_start(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (with the pid, it names the process for good)."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)  # a bare read: one per task start
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        return int(os.read(fd, 4096).rsplit(b")", 1)[1].split()[19])
    except (ProcessLookupError, IndexError, ValueError):
        return None
    finally:
        os.close(fd)


def runner_start() -> int:
    global _own_start
    if _own_start is None:
        _own_start = process_start(os.getpid()) or 0
    return _own_start


def task_cgroup_name(task_id: str) -> str:
    return f"lxrun-{task_id}"


class TaskRecord:
    """The open record of one task in flight."""

    def __init__(self, path: str, fd: int, data: dict[str, Any]) -> None:
        self.path = path
        self._fd = fd
        self.data = data
        self._size = 0  # bytes in the file now

    def update(self, **fields: Any) -> None:
        """Rewrite in place (no rename, no fsync: a reader that catches a torn write retries); truncated
        only where the record got shorter (an update mostly adds fields)."""
        self.data.update(fields)
        payload = json.dumps(self.data).encode()
        os.pwrite(self._fd, payload, 0)
        if len(payload) < self._size:
            os.ftruncate(self._fd, len(payload))
        self._size = len(payload)

    def running_as(self, pid: int) -> None:
        """The task's pid 1 on the host, with its start time: `lxrun kill` and `ps` never mistake a recycled pid."""
        self.update(pid=pid, pid_start=process_start(pid))

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)


def live_pid(data: dict[str, Any]) -> int | None:
    """The record's pid 1 while that very process runs (same pid, same start time), else None."""
    pid, start = data.get("pid"), data.get("pid_start")
    if isinstance(pid, int) and start is not None and process_start(pid) == start:
        return pid
    return None


@contextlib.contextmanager
def task_record(layout: Layout, plan: TaskPlan, backend: str) -> Iterator[TaskRecord]:
    """One file, created exclusively (a task id is never reused while its record exists)."""
    data = {
        "id": plan.task_id,
        "name": plan.spec.name,
        "stack": plan.stack.ref,
        "backend": backend,
        "runner_pid": os.getpid(),
        "runner_start": runner_start(),
        "created": time.time(),
        "cgroup": task_cgroup_name(plan.task_id),
        "cgroup_parent": plan.spec.cgroup_parent,
        "command": list(plan.argv),
        "layers": list(plan.stack.layers),  # held: `lxrun gc --layers` and `stack rm` leave them alone
        "network": plan.spec.network.mode,
    }
    with open_record(layout, plan.task_id, data) as record:
        yield record


@contextlib.contextmanager
def open_record(layout: Layout, task_id: str, data: dict[str, Any]) -> Iterator[TaskRecord]:
    """The record of `task_id` holding `data` (task_record's fields), removed on the way out."""
    record = new_record(layout, task_id, data)
    try:
        yield record
    finally:
        record.remove()


def new_record(layout: Layout, task_id: str, data: dict[str, Any]) -> TaskRecord:
    """The record of `task_id` holding `data`; its owner removes it (TaskRecord.remove). Written whole
    before its name appears (an unnamed file, then linked): a runner killed at any moment leaves a
    whole record or none, never an empty one that `lxrun gc` would have to wait out."""
    path = layout.task(task_id)
    try:
        run_dir = os.open(layout.run, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SetupError.from_os_error("task record", exc) from exc
    try:
        return _linked_record(run_dir, path, data)
    finally:
        os.close(run_dir)


def _linked_record(run_dir: int, path: str, data: dict[str, Any]) -> TaskRecord:
    try:
        fd = os.open(".", os.O_RDWR | os.O_TMPFILE | os.O_CLOEXEC, 0o600, dir_fd=run_dir)
    except OSError as exc:
        hint = "put the state root on a filesystem with O_TMPFILE (ext4, xfs, btrfs, tmpfs)"
        raise SetupError.from_os_error("task record", exc, os.path.dirname(path), hint=hint) from exc
    record = TaskRecord(path, fd, data)
    try:
        with host_errors("task record", path=path):
            record.update()
        faults.point("record-written")
        try:
            # linkat(2) following the descriptor's link (os.link only follows it given a directory descriptor);
            # the name is taken exclusively: a task id is never reused while its record exists.
            os.link(f"/proc/self/fd/{fd}", os.path.basename(path), dst_dir_fd=run_dir)
        except FileExistsError as exc:
            raise SetupError("task record", "task id already in use", path=path) from exc
        except OSError as exc:
            raise SetupError.from_os_error("task record", exc, path) from exc
    except BaseException:
        record.remove()
        raise
    return record


def read_record(path: str) -> dict[str, Any] | None:
    """A record's data; None if it is gone or, after a retry, still unreadable (torn or empty)."""
    for attempt in range(3):
        try:
            with open(path) as file:
                data = json.load(file)
            if isinstance(data, dict):
                return data
        except FileNotFoundError:
            return None
        except ValueError:
            pass
        except OSError as exc:
            raise SetupError.from_os_error("task record", exc, path) from exc
        if attempt < 2:
            time.sleep(0.005)
    return None


def runner_alive(data: dict[str, Any]) -> bool:
    """Whether the record's runner still runs: its pid, and its start time when recorded (pids recycle)."""
    pid, start = data.get("runner_pid"), data.get("runner_start")
    if not isinstance(pid, int):
        return False
    found = process_start(pid)
    return found is not None and (start is None or found == start)


def records(layout: Layout) -> list[tuple[str, dict[str, Any] | None]]:
    """(task id, data or None if unreadable) for every task record in run/ (builds keep theirs there too,
    named build-<id>.json: those are the store's)."""
    try:
        names = os.listdir(layout.run)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SetupError.from_os_error("task records", exc, layout.run) from exc
    return [
        (name[:-5], read_record(f"{layout.run}/{name}"))
        for name in sorted(names)
        if name.endswith(".json") and "-" not in name
    ]


@contextlib.contextmanager
def claimed_name(layout: Layout, name: str | None, task_id: str) -> Iterator[None]:
    """--name is unique among live tasks: names/<name> links to the task holding it."""
    if name is None:
        yield
        return
    link = f"{layout.names}/{name}"
    for _ in range(2):
        try:
            os.symlink(task_id, link)
            break
        except FileExistsError as exc:
            holder = _link_target(link)
            data = read_record(layout.task(holder)) if holder else None
            if data is not None and runner_alive(data):
                raise SpecError("name", f"is in use by task {holder}", path=name, hint="choose another name") from exc
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)  # its task is gone: the name is free again
        except OSError as exc:
            raise SetupError.from_os_error("task name", exc, link) from exc
    else:
        raise SetupError("name", "could not be claimed", path=name, errno=errno.EEXIST)
    try:
        yield
    finally:
        if _link_target(link) == task_id:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)


def _link_target(link: str) -> str | None:
    try:
        return os.readlink(link)
    except OSError:
        return None


def find_task(layout: Layout, id_or_name: str) -> tuple[str, dict[str, Any]]:
    """A task in flight by id, name or id prefix, in docker's order (a name equal to another task's id
    can't take its place); LxrunError if none."""
    if "/" not in id_or_name and os.path.exists(layout.task(id_or_name)):
        task_id: str | None = id_or_name
    else:
        task_id = _link_target(f"{layout.names}/{id_or_name}") if "/" not in id_or_name else None
    candidates = [task_id] if task_id else [t for t, _ in records(layout) if t.startswith(id_or_name)]
    if len(candidates) > 1:
        raise SpecError("task", f"matches {len(candidates)} tasks", path=id_or_name, hint="give more of the id")
    data = read_record(layout.task(candidates[0])) if candidates else None
    if not candidates or data is None:
        raise LxrunError("task", "no such task in flight", path=id_or_name, hint="see `lxrun ps`")
    return candidates[0], data
