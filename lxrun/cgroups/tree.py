"""The cgroup tree a task of another runtime (the lxc and docker backends) lives in: created, read,
killed and removed here, one tree per task.

    <base>/<top>/<task-id>/task      ours: usage is read here after the task (cgroups are hierarchical)
    <base>/<top>/<task-id>/task/...  the runtime's own cgroups, with the limits (LXC's container, Docker's)
    <base>/<top>/<task-id>/...       what else the runtime makes beside them (LXC's monitor)

`<base>` is the cgroup this process is in, in every hierarchy (LXC with lxc.cgroup.relative = 1
nests under the same one), or the --cgroup-parent given (docker's): nothing lands at the top of a
hierarchy and nothing outside our `<task-id>` directory is ever touched. The tree goes as a whole
when the task has ended. lxrun's own task cgroups are the managers' (v1.py, v2.py), not these.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time

from lxrun import signals as signal
from lxrun.cgroups.base import NO_USAGE, read_keyed, read_text, rmdir_patiently, write
from lxrun.cgroups.limits import v1_files, v2_files
from lxrun.cgroups.v1 import V1TaskCgroup, inherit_cpuset
from lxrun.cgroups.v2 import WANTED, V2TaskCgroup
from lxrun.errors import SetupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun.cgroups.base import Usage
    from lxrun.cgroups.discover import Hierarchy
    from lxrun.spec import Limits

CREATE_ATTEMPTS = 10
REMOVE_PATIENCE = 2.0  # seconds: a cgroup stays busy briefly after its last process was reaped
WEIGHTS = ("cpu.shares", "cpu.weight")  # --cpu-shares on v1 and on v2


def undelegated(hierarchies: list[Hierarchy]) -> list[str]:
    """On a v2-only host: the controllers our own cgroup does not pass on to children (a cgroup with
    processes in it can't, so lxrun must run in a leaf of a delegated subtree). Empty where all is well."""
    if legacy_memory(hierarchies) is not None:
        return []
    unified = next((h for h in hierarchies if h.unified), None)
    if unified is None:
        return list(WANTED)
    try:
        enabled = set(read_text(unified.path("cgroup.subtree_control")).split())
    except OSError:
        enabled = set()
    return [name for name in ("cpu", "memory", "pids") if name not in enabled]


def legacy_memory(hierarchies: list[Hierarchy]) -> Hierarchy | None:
    """The v1 memory hierarchy, if limits go through v1 (legacy or hybrid hosts)."""
    return next((h for h in hierarchies if not h.unified and "memory" in h.controllers), None)


class TaskTree:
    """The tree of one task (see the module docstring); `relative` and `task` are paths below `<base>`,
    as a runtime's config takes them."""

    def __init__(self, task_id: str, hierarchies: list[Hierarchy], top: str) -> None:
        self.hierarchies = hierarchies
        self.top = top
        self.relative = f"{top}/{task_id}"
        self.task = f"{self.relative}/task"

    def find(self, controller: str) -> Hierarchy | None:
        """Where `controller` is accounted: its v1 hierarchy if it has one, else the unified one."""
        legacy = next((h for h in self.hierarchies if not h.unified and controller in h.controllers), None)
        return legacy or next((h for h in self.hierarchies if h.unified and controller in h.controllers), None)

    @contextlib.contextmanager
    def created(self, limits: Limits) -> Iterator[TaskTree]:
        """Create `<task-id>/task` in every hierarchy (while it exists, the shared top can't go from under
        the runtime's own mkdir -p); on the way out kill what is still in it and remove the whole tree.

        CPU shares weigh a cgroup against its siblings only, and the siblings of one task's cgroups
        are other tasks' `<task-id>` directories: so the task's weight is set there as well."""
        try:
            for hierarchy in self.hierarchies:
                self._create(hierarchy)
            self._weigh(limits)
            yield self
        finally:
            self.kill_all()  # the backend's own teardown may have failed to end the container
            self.remove()

    def _create(self, hierarchy: Hierarchy) -> None:
        top = hierarchy.path(self.top)
        # The shared top goes when its last task ends: if that happens before our own directory is in it
        # (between the two mkdirs, or while we fill in its cpuset), make it again.
        for attempt in range(CREATE_ATTEMPTS):
            try:
                self._mkdir(hierarchy, top, exist_ok=True)  # filling in its cpuset may find it gone, too
                self._mkdir(hierarchy, hierarchy.path(self.relative), exist_ok=False)
                break
            except FileNotFoundError as exc:
                if attempt == CREATE_ATTEMPTS - 1:
                    raise SetupError.from_errno("cgroup", errno.ENOENT, top) from exc
        self._mkdir(hierarchy, hierarchy.path(self.task), exist_ok=False)

    @staticmethod
    def _mkdir(hierarchy: Hierarchy, path: str, exist_ok: bool) -> None:
        try:
            os.mkdir(path, 0o755)
        except FileExistsError as exc:
            if not exist_ok:
                raise SetupError("cgroup", "already exists", path=path) from exc
            # Another task made it a moment ago, and may not have filled its cpuset yet: we do it too.
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise SetupError.from_errno("cgroup", exc.errno or errno.EIO, path) from exc
        try:
            if "cpuset" in hierarchy.controllers and not hierarchy.unified:
                _inherit_cpuset(path)
            if hierarchy.unified:
                _delegate(path, hierarchy.controllers)
        except SetupError as exc:
            # The shared top's last task removed it under us: its files are gone (ENOENT) or dead (ENODEV).
            if exc.errno in (errno.ENOENT, errno.ENODEV):
                raise FileNotFoundError(exc.errno, "removed while being filled in", path) from exc
            raise

    def _weigh(self, limits: Limits) -> None:
        cpu = self.find("cpu")
        if cpu is None or limits.cpu_shares is None:
            return
        files = v2_files(limits, swap_accounting=False) if cpu.unified else v1_files(limits, swap_accounting=False)
        for name in WEIGHTS:
            if name in files:
                write(cpu.path(f"{self.relative}/{name}"), files[name])

    def swap_accounting(self) -> bool:
        """Whether the kernel accounts swap in the task's memory cgroup (v1 memsw, v2 swap.max): what the
        limits table needs to know. Only while the tree exists."""
        memory = self.find("memory")
        if memory is None:
            return False
        name = "memory.swap.max" if memory.unified else "memory.memsw.limit_in_bytes"
        return os.path.exists(memory.path(f"{self.task}/{name}"))

    def exists(self) -> bool:
        return any(os.path.isdir(h.path(self.relative)) for h in self.hierarchies)

    def pids(self) -> set[int]:
        """Every process in the task's tree, in any hierarchy and at any depth."""
        found: set[int] = set()
        for hierarchy in self.hierarchies:
            for directory, _, _ in os.walk(hierarchy.path(self.relative)):
                with contextlib.suppress(FileNotFoundError):
                    found.update(int(pid) for pid in read_text(f"{directory}/cgroup.procs").split())
        return found

    def kill_all(self) -> None:
        """SIGKILL every process left in the task's tree, until none is (after a runner died mid-task);
        what survives REMOVE_PATIENCE makes remove() fail, naming the cgroup."""
        deadline = time.monotonic() + REMOVE_PATIENCE
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        """rmdir every directory under each `<task-id>`, deepest first, then the shared top if now empty."""
        deadline = time.monotonic() + REMOVE_PATIENCE
        for hierarchy in self.hierarchies:
            base = hierarchy.path(self.relative)
            if not os.path.isdir(base):
                continue
            directories = [directory for directory, _, _ in os.walk(base)]
            for directory in sorted(directories, key=len, reverse=True):
                rmdir_patiently(directory, deadline)
            with contextlib.suppress(OSError):
                os.rmdir(hierarchy.path(self.top))  # other tasks may still use it: then it stays

    def usage(self, oom_kill_file: str | None) -> Usage:
        """Read by v1's or v2's reader from `<task-id>/task`, whose figures include the runtime's cgroups.

        v1 counts OOM kills per cgroup only, and LXC removes the container's cgroup itself: there the
        count comes from `oom_kill_file`, the copy LXC's stop hook made just before (see lxc_config)."""
        memory = self.find("memory")
        if memory is None or memory.unified:
            unified = next((h for h in self.hierarchies if h.unified), None)
            return V2TaskCgroup(unified.path(self.task)).usage() if unified is not None else NO_USAGE
        dirs = {}
        for controller in ("memory", "cpuacct", "pids"):
            hierarchy = self.find(controller)
            if hierarchy is not None and not hierarchy.unified:
                dirs[controller] = hierarchy.path(self.task)
        usage = V1TaskCgroup(dirs).usage()
        if oom_kill_file is not None:
            usage = usage.replace(oom_killed=read_keyed(oom_kill_file).get("oom_kill", 0) > 0)
        return usage


def _inherit_cpuset(path: str) -> None:
    """The parent's cpus and mems (a new v1 cpuset has none), and the cgroups the runtime creates below
    copy ours (clone_children)."""
    inherit_cpuset(path)
    write(f"{path}/cgroup.clone_children", "1")


def _delegate(path: str, controllers: frozenset[str]) -> None:
    """v2: make the controllers the runtime will set limits with available in the children of `path`."""
    wanted = " ".join(f"+{name}" for name in WANTED if name in controllers)
    if not wanted:
        return
    try:
        with open(f"{path}/cgroup.subtree_control", "w") as file:
            file.write(wanted)
    except OSError as exc:
        raise SetupError.from_errno(
            "cgroup", exc.errno or errno.EIO, path, hint="lxrun's own cgroup must delegate cpu, memory and pids"
        ) from exc
