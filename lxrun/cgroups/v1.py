"""cgroup v1: one directory per controller hierarchy; kill-all by freezing, SIGKILL, thawing.

Every task has a cgroup of its own in memory, cpuacct, pids and freezer (for its usage figures,
fork-bomb protection and a race-free kill); in cpu and cpuset only when it has such a limit, as each
hierarchy costs a mkdir, a join and an rmdir (~40-110 us). Without one it joins the leaf
`lxrun/shared` there (a join alone): runtimes such as the JVM read their limits from /sys/fs/cgroup
only when they find cpu and cpuset mounted too, and a task is shown only the hierarchies it is in,
each from its own cgroup down (see `view`). In devices every task joins the shared leaf: the
allow-list of the minimal /dev is the same for all, written into the leaf when it is made (a task
can't change it: the view is read-only and v1 wants CAP_SYS_ADMIN on the host to write it). A task
given a cgroup parent (an OCI container's cgroupsPath, --cgroup-parent) has its own cgroup in every
hierarchy below that parent, as runc's (in cpuset where the parent's cpuset has cpus and mems to
inherit), devices checked against the minimal list: the shared leaf would be made below the caller's
own cgroup (an engine's conmon or shim), which lxrun has no business leaving things in.

What is fixed for the process is worked out once per manager: the `lxrun/` parents (made again
when `lxrun gc` removed one while idle: a task's mkdir there then fails with ENOENT), swap
accounting, each hierarchy as a task sees it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time

from lxrun import signals as signal
from lxrun.cgroups.base import (
    FREEZE_TIMEOUT,
    NO_USAGE,
    CgroupManager,
    CgroupView,
    TaskCgroup,
    Usage,
    make_dir,
    read_int,
    read_keyed,
    read_limit,
    read_text,
    wait_until,
    wait_until_empty,
    write,
)
from lxrun.cgroups.limits import FIELDS_OF_CONTROLLER, controller_of, v1_files
from lxrun.errors import SetupError, SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.spec import Limits

ALWAYS = ("memory", "cpuacct", "pids", "freezer")
SHARED = ("cpu", "cpuset", "devices")  # joined in the shared leaf, unless limited or below a cgroup parent
SHARED_LEAF = "shared"
# The minimal /dev: null, zero, full, random, urandom, tty, ptmx and the pts it opens.
ALLOWED_DEVICES = (
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
)


class V1TaskCgroup(TaskCgroup):
    """`dirs` are the task's own (removed with it); `shared` the leaves it joins without owning them;
    `hierarchies` each joined controller's hierarchy as the task is to see it (directory name, mount
    options)."""

    def __init__(
        self,
        dirs: dict[str, str],
        shared: dict[str, str] | None = None,
        hierarchies: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(dirs)
        self.shared = shared or {}
        self.hierarchies = hierarchies or {}

    def join_files(self) -> list[str]:
        # `tasks` moves the writing thread alone, which the kernel does without taking its global
        # threadgroup lock for writing (that waits for an RCU grace period: 5-30 ms for the first
        # task after a pause). The child that writes is single-threaded: that is the whole process.
        return [f"{path}/tasks" for path in dict.fromkeys((*self.dirs.values(), *self.shared.values()))]

    def view(self) -> CgroupView:
        mounted = dict(self.hierarchies[c] for c in (*self.dirs, *self.shared) if c in self.hierarchies)
        links = {part: name for name in mounted if "," in name for part in name.split(",") if part != name}
        return CgroupView(unified=False, hierarchies=mounted, links=links)

    def usage(self) -> Usage:
        memory, cpuacct, pids = self.dirs.get("memory"), self.dirs.get("cpuacct"), self.dirs.get("pids")
        user = read_int(f"{cpuacct}/cpuacct.usage_user") if cpuacct else None
        system = read_int(f"{cpuacct}/cpuacct.usage_sys") if cpuacct else None
        return Usage(
            # oom_kill counts the kernel's OOM kills in this cgroup (Linux >= 4.13).
            oom_killed=bool(memory and read_keyed(f"{memory}/memory.oom_control").get("oom_kill", 0) > 0),
            peak_memory=read_int(f"{memory}/memory.max_usage_in_bytes") if memory else None,
            cpu_user=user / 1e9 if user is not None else None,
            cpu_system=system / 1e9 if system is not None else None,
            pids_peak=read_int(f"{pids}/pids.peak") if pids else None,
        )

    def current_memory(self) -> int | None:
        memory = self.dirs.get("memory")
        return read_int(f"{memory}/memory.usage_in_bytes") if memory else None

    def restart_accounting(self) -> Usage:
        # v1 resets both: the peak to what is in use now, the CPU counters to zero.
        if "memory" in self.dirs:
            write(f"{self.dirs['memory']}/memory.max_usage_in_bytes", "0")
        if "cpuacct" in self.dirs:
            write(f"{self.dirs['cpuacct']}/cpuacct.usage", "0")
        return NO_USAGE

    def retune(self, limits: Limits, made_with: Limits) -> bool:
        memory = self.dirs.get("memory")
        swap = memory is not None and os.path.exists(f"{memory}/memory.memsw.limit_in_bytes")
        files, old = v1_files(limits, swap), v1_files(made_with, swap)
        if files.keys() != old.keys() or any(controller_of(file) not in self.dirs for file in files):
            return False
        order = list(files)
        if limits.memory is not None and made_with.memory is not None and limits.memory > made_with.memory:
            order.sort(key=lambda file: file != "memory.memsw.limit_in_bytes")  # raising: memsw >= memory at every step
        for file in order:
            if files[file] != old[file]:
                write(f"{self.dirs[controller_of(file)]}/{file}", files[file])
        return True

    def apply(self, limits: Limits) -> None:
        memory = self.dirs.get("memory")
        swap = memory is not None and os.path.exists(f"{memory}/memory.memsw.limit_in_bytes")
        files = v1_files(limits, swap)
        for file in files:
            if controller_of(file) not in self.dirs:
                raise SpecError(
                    FIELDS_OF_CONTROLLER[controller_of(file)],
                    f"the task has no {controller_of(file)} cgroup of its own to change (made without that limit)",
                    hint="give the limit when the task is created",
                )
        order = list(files)
        current = read_int(f"{memory}/memory.limit_in_bytes") if memory else None
        if limits.memory is not None and current is not None and limits.memory > current:
            order.sort(key=lambda file: file != "memory.memsw.limit_in_bytes")  # raising: memsw >= memory at every step
        for file in order:
            write(f"{self.dirs[controller_of(file)]}/{file}", files[file])

    def bounds(self) -> tuple[int | None, int | None]:
        memory, pids = self.dirs.get("memory"), self.dirs.get("pids")
        return (
            read_limit(f"{memory}/memory.limit_in_bytes") if memory else None,
            read_limit(f"{pids}/pids.max") if pids else None,
        )

    def freezer(self) -> tuple[str, str] | None:
        freezer = self.dirs.get("freezer")
        return None if freezer is None else (f"{freezer}/freezer.state", "FROZEN")

    def freeze(self, frozen: bool) -> None:
        found = self.freezer()
        if found is None:
            super().freeze(frozen)
            return
        state_file, word = found
        if not frozen:
            write(state_file, "THAWED")
            return
        # FREEZING until every process has stopped: wait for FROZEN, as runc; thawed again if never.
        write(state_file, word)
        try:
            wait_until(lambda: read_text(state_file).strip() == word, "freeze", state_file)
        except SetupError:
            write(state_file, "THAWED")
            raise

    def kill_all(self) -> None:
        freezer = self.dirs.get("freezer")
        if freezer is None:
            wait_until_empty(self, lambda: self.signal_all(signal.SIGKILL))
            return

        def freeze_kill_thaw() -> None:
            # Frozen, nothing can fork between listing the processes and killing them.
            write(f"{freezer}/freezer.state", "FROZEN")
            deadline = time.monotonic() + FREEZE_TIMEOUT
            while read_text(f"{freezer}/freezer.state").strip() != "FROZEN" and time.monotonic() < deadline:
                time.sleep(0.0005)
            self.signal_all(signal.SIGKILL)
            write(f"{freezer}/freezer.state", "THAWED")

        wait_until_empty(self, freeze_kill_thaw)


class V1Manager(CgroupManager):
    version = "v1"

    def __init__(self, mounts: dict[str, str], own: dict[str, str]) -> None:
        self.mounts = mounts  # controller -> mount point of its hierarchy
        self.own = own  # controller -> the cgroup this process is in
        self._hierarchies: dict[str, tuple[str, str]] = {}  # controller -> _hierarchy's answer
        self._swap: bool | None = None  # _swap_accounting's answer

    def parent_dirs(self) -> list[str]:
        return [self._lxrun_dir(name) for name in self.mounts]

    def _lxrun_dir(self, controller: str) -> str:
        """lxrun's own parent in `controller`'s hierarchy, below the cgroup this process is in."""
        return f"{self.mounts[controller]}{self.own[controller].rstrip('/')}/lxrun"

    idle_leaves = (SHARED_LEAF,)

    def remove_idle_parents(self) -> list[str]:
        for path in self.parent_dirs():
            with contextlib.suppress(OSError):  # in use (EBUSY), or not there: either way it stays out
                os.rmdir(f"{path}/{SHARED_LEAF}")
        return super().remove_idle_parents()

    def _hierarchy(self, controller: str) -> tuple[str, str]:
        """The controller's hierarchy as a task sees it: its directory name and the mount options naming
        every controller it carries (co-mounted ones, such as cpu,cpuacct, included)."""
        found = self._hierarchies.get(controller)
        if found is None:
            mount = self.mounts[controller]
            carried = sorted(c for c, point in self.mounts.items() if point == mount)
            found = self._hierarchies[controller] = os.path.basename(mount), ",".join(carried)
        return found

    def own_cgroup(self) -> V1TaskCgroup:
        return V1TaskCgroup({name: f"{mount}{self.own[name].rstrip('/')}" for name, mount in self.mounts.items()})

    def find(self, name: str, parent: str | None = None) -> V1TaskCgroup | None:
        dirs = {}
        for controller, mount in self.mounts.items():
            base = f"{mount}{parent}" if parent else self._lxrun_dir(controller)
            if os.path.isdir(f"{base}/{name}"):
                dirs[controller] = f"{base}/{name}"
        return V1TaskCgroup(dirs) if dirs else None

    def _parent_dir(self, controller: str, parent: str | None) -> str:
        """Where the task's cgroup goes in `controller`'s hierarchy: below `parent` (SpecError where it
        does not exist), else in lxrun's own parent (made by _make_task_dir when missing)."""
        if parent is None:
            return self._lxrun_dir(controller)
        path = f"{self.mounts[controller]}{parent}"
        if not os.path.isdir(path):
            raise SpecError(
                "cgroup_parent",
                f"does not exist in the {controller} hierarchy ({path})",
                path=parent,
                hint="create it first, in every controller's hierarchy",
            )
        return path

    def _make_task_dir(self, controller: str, path: str, own_parent: bool) -> None:
        """mkdir the task's cgroup `path`. In lxrun's own parent (`own_parent`) that parent is made
        first where it is missing: not made yet, or removed by `lxrun gc` while no task used it."""
        try:
            os.mkdir(path)
            return
        except FileExistsError as exc:
            raise SetupError("create cgroup", "already exists", path=path) from exc
        except FileNotFoundError as exc:
            if not own_parent:
                raise SetupError.from_errno("create cgroup", errno.ENOENT, path) from exc
        except OSError as exc:
            raise SetupError.from_errno("create cgroup", exc.errno or errno.EIO, path) from exc
        self._make_parent(controller, os.path.dirname(path))
        if not make_dir(path):
            raise SetupError("create cgroup", "already exists", path=path)

    def make_parent(self, parent: str) -> bool:
        for controller, mount in self.mounts.items():
            path = mount
            for level in parent.strip("/").split("/"):
                path = f"{path}/{level}"
                if not os.path.isdir(path):
                    self._make_parent(controller, path, minimal_devices=False)  # the engine's: all it had
        return True

    @staticmethod
    def _make_parent(controller: str, path: str, minimal_devices: bool = True) -> None:
        """Make `lxrun/` whole before it has its name: configured under a private name, then renamed, so
        no runner ever puts a task below a half-configured parent (cpusets empty, devices half-listed)."""
        staged = f"{os.path.dirname(path)}/.lxrun-{os.getpid()}-{os.urandom(4).hex()}"
        make_dir(staged)
        try:
            if controller == "cpuset":
                inherit_cpuset(staged)
            elif controller == "devices" and minimal_devices:
                allow_minimal_devices(staged)
            os.rename(staged, path)
        except FileExistsError:
            pass  # another runner's is in place: as good as ours
        except OSError as exc:
            raise SetupError.from_errno("create cgroup", exc.errno or errno.EIO, path) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(staged)

    def create(self, name: str, limits: Limits, parent: str | None = None) -> V1TaskCgroup:
        files = v1_files(limits, self._swap_accounting())
        wanted = [c for c in ALWAYS if c in self.mounts]
        if parent is not None:
            wanted += [c for c in SHARED if c in self.mounts and self._holds_tasks(c, parent)]
        for needed in dict.fromkeys(controller_of(file) for file in files):
            if needed not in self.mounts:
                raise SpecError(
                    FIELDS_OF_CONTROLLER[needed], f"needs the {needed} cgroup controller, which this host lacks"
                )
            if needed not in wanted:
                wanted.append(needed)
        parents = {controller: self._parent_dir(controller, parent) for controller in wanted}
        task = V1TaskCgroup({})
        try:
            made: dict[str, str] = {}  # mount point -> the task's dir there: co-mounted controllers share one
            for controller in wanted:
                mount = self.mounts[controller]
                if mount not in made:
                    path = f"{parents[controller]}/{name}"
                    self._make_task_dir(controller, path, parent is None)
                    made[mount] = path
                task.dirs[controller] = made[mount]
            for file, value in files.items():
                write(f"{task.dirs[controller_of(file)]}/{file}", value)
            self._complete(task)
            self._join_shared(task)
        except BaseException:
            task.remove()
            raise
        return task

    def _holds_tasks(self, controller: str, parent: str) -> bool:
        """Whether a cgroup of the task's own can go below `parent` there: a cpuset whose cpus or mems are
        empty (a parent made with mkdir alone) takes none, and lxrun fills in no cgroup it did not make."""
        if controller != "cpuset":
            return True
        path = f"{self.mounts[controller]}{parent}"
        with contextlib.suppress(OSError):
            return all(read_text(f"{path}/cpuset.{name}").strip() for name in ("cpus", "mems"))
        return True  # a parent that isn't there: create says so, naming it

    def _join_shared(self, task: V1TaskCgroup) -> None:
        """The shared leaf (under lxrun's own parent, whatever `parent` the task has) in each of SHARED's
        hierarchies the task has no cgroup of its own in; and the view of every hierarchy it joins."""
        joined = {self.mounts[c] for c in task.dirs}
        for controller in SHARED:
            if controller in self.mounts and self.mounts[controller] not in joined:
                task.shared[controller] = self._shared_leaf(controller)
                joined.add(self.mounts[controller])
        task.hierarchies = {c: self._hierarchy(c) for c in (*task.dirs, *task.shared)}

    def _shared_leaf(self, controller: str) -> str:
        """The shared leaf of `controller`'s hierarchy, made whole (its parent too) where missing: looked
        for on every task, as `lxrun gc` removes it while no task is in it."""
        parent = self._lxrun_dir(controller)
        leaf = f"{parent}/{SHARED_LEAF}"
        if not os.path.isdir(leaf):
            if not os.path.isdir(parent):
                self._make_parent(controller, parent)
            self._make_parent(controller, leaf)
        return leaf

    def _swap_accounting(self) -> bool:
        """Whether memory.memsw.* exist: in every memory cgroup, the hierarchy's root included, or in
        none (fixed at boot: swapaccount=)."""
        if self._swap is None:
            memory = self.mounts.get("memory")
            self._swap = memory is not None and os.path.exists(f"{memory}/memory.memsw.limit_in_bytes")
        return self._swap

    @staticmethod
    def _complete(task: V1TaskCgroup) -> None:
        """What v1 needs beyond the limits before a task may join: a cpuset's mems, the devices list."""
        cpuset, devices = task.dirs.get("cpuset"), task.dirs.get("devices")
        if cpuset is not None and read_text(f"{cpuset}/cpuset.cpus").strip():
            write(f"{cpuset}/cpuset.mems", read_text(f"{os.path.dirname(cpuset)}/cpuset.mems").strip())
        elif cpuset is not None:  # a cpuset of its own with no cpus limit (a task with a cgroup parent)
            inherit_cpuset(cpuset)
        # Inherited from our parent, unless another runner just made that parent and has not
        # written its list yet, or the parent is not ours (--cgroup-parent): check, never trust.
        if devices is not None and set(read_text(f"{devices}/devices.list").splitlines()) != set(ALLOWED_DEVICES):
            allow_minimal_devices(devices)


def allow_minimal_devices(path: str) -> None:
    """Deny every device, then allow the minimal /dev (idempotent: the list is rewritten as a whole)."""
    write(f"{path}/devices.deny", "a")
    for rule in ALLOWED_DEVICES:
        write(f"{path}/devices.allow", rule)


def inherit_cpuset(path: str) -> None:
    """A new v1 cpuset starts empty and takes no task until given its parent's cpus and mems."""
    parent = os.path.dirname(path)
    for name in ("cpuset.cpus", "cpuset.mems"):
        write(f"{path}/{name}", read_text(f"{parent}/{name}").strip())
