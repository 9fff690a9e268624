"""cgroup v2: one tree; controllers enabled top-down in cgroup.subtree_control; cgroup.kill kills all.

The no-internal-processes rule: a cgroup that enables controllers for its children may not hold
processes itself (the root excepted). Run from a delegated cgroup that holds processes (a systemd
service with Delegate=yes: lxrun and, say, the shell that started it), lxrun first moves those
processes into the leaf `lxrun-runner` beside its task cgroups (as dind and systemd's delegation
notes do), then enables only the controllers its tasks use, and never writes outside that subtree.
"""

from __future__ import annotations

import contextlib
import errno
import os

from lxrun import signals as signal
from lxrun.cgroups.base import (
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
from lxrun.cgroups.limits import FIELDS_OF_CONTROLLER, controller_of, v2_files
from lxrun.errors import HostUnsupported, SetupError, SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.spec import Limits

WANTED = ("memory", "pids", "cpu", "cpuset")
RUNNER_LEAF = "lxrun-runner"
MOVE_ATTEMPTS = 10


class V2TaskCgroup(TaskCgroup):
    def __init__(self, path: str) -> None:
        super().__init__({"unified": path})
        self.path = path

    def birth_dir(self) -> str | None:
        return self.path

    def view(self) -> CgroupView:
        return CgroupView(unified=True)

    def usage(self) -> Usage:
        cpu = read_keyed(f"{self.path}/cpu.stat")
        return Usage(
            oom_killed=read_keyed(f"{self.path}/memory.events").get("oom_kill", 0) > 0,
            peak_memory=read_int(f"{self.path}/memory.peak"),
            cpu_user=cpu["user_usec"] / 1e6 if "user_usec" in cpu else None,
            cpu_system=cpu["system_usec"] / 1e6 if "system_usec" in cpu else None,
            pids_peak=read_int(f"{self.path}/pids.peak"),
        )

    def current_memory(self) -> int | None:
        return read_int(f"{self.path}/memory.current")

    def restart_accounting(self) -> Usage:
        # v2 resets neither counter (memory.peak only per open file, from Linux 6.12): CPU time is
        # subtracted, the peak keeps what setup used (pid 1 and its mounts, well under a MiB).
        return self.usage()

    def retune(self, limits: Limits, made_with: Limits) -> bool:
        swap = os.path.exists(f"{self.path}/memory.swap.max")
        files, old = v2_files(limits, swap), v2_files(made_with, swap)
        if files.keys() != old.keys():
            return False
        for file, value in files.items():
            if value != old[file]:
                write(f"{self.path}/{file}", value)
        return True

    def apply(self, limits: Limits) -> None:
        files = v2_files(limits, os.path.exists(f"{self.path}/memory.swap.max"))
        enabled = set(read_text(f"{os.path.dirname(self.path)}/cgroup.subtree_control").split())
        for file in files:
            if controller_of(file) not in enabled:
                raise SpecError(
                    FIELDS_OF_CONTROLLER[controller_of(file)],
                    f"the {controller_of(file)} controller is not enabled for this task's cgroup",
                    hint="give the limit when the task is created",
                )
        for file, value in files.items():
            write(f"{self.path}/{file}", value)

    def bounds(self) -> tuple[int | None, int | None]:
        return read_limit(f"{self.path}/memory.max"), read_limit(f"{self.path}/pids.max")

    def freezer(self) -> tuple[str, str] | None:
        return (f"{self.path}/cgroup.freeze", "1") if os.path.exists(f"{self.path}/cgroup.freeze") else None

    def freeze(self, frozen: bool) -> None:
        if self.freezer() is None:
            super().freeze(frozen)
            return
        write(f"{self.path}/cgroup.freeze", "1" if frozen else "0")
        if frozen:  # cgroup.events says frozen 1 once every process has stopped
            events = f"{self.path}/cgroup.events"
            try:
                wait_until(lambda: read_keyed(events).get("frozen") == 1, "freeze", events)
            except SetupError:
                write(f"{self.path}/cgroup.freeze", "0")
                raise

    def kill_all(self) -> None:
        if os.path.exists(f"{self.path}/cgroup.kill"):
            wait_until_empty(self, lambda: write(f"{self.path}/cgroup.kill", "1"))
            return

        def freeze_kill_thaw() -> None:  # Linux < 5.14: no cgroup.kill
            write(f"{self.path}/cgroup.freeze", "1")
            self.signal_all(signal.SIGKILL)
            write(f"{self.path}/cgroup.freeze", "0")

        wait_until_empty(self, freeze_kill_thaw)


class V2Manager(CgroupManager):
    version = "v2"

    def __init__(self, mount: str, own: str) -> None:
        self.mount = mount  # the cgroup2 mount point, e.g. /sys/fs/cgroup
        # The cgroup we were given; already in our leaf (moved there by an earlier runner), its parent.
        self.own = os.path.dirname(own) if os.path.basename(own) == RUNNER_LEAF else own
        self._ready: dict[str, frozenset[str]] = {}  # parent dir -> controllers its children get

    def create(self, name: str, limits: Limits, parent: str | None = None) -> V2TaskCgroup:
        parent_dir, enabled = self._parent(parent)
        # Which controllers the limits need; swap accounting only adds a file of memory's.
        for controller in dict.fromkeys(controller_of(file) for file in v2_files(limits, swap_accounting=False)):
            if controller not in enabled:
                raise SpecError(
                    "cgroup",
                    f"the {controller} controller is not available to {parent_dir}",
                    hint="delegate it (systemd: Delegate=yes) or run without that limit",
                )
        path = f"{parent_dir}/{name}"
        if not make_dir(path):
            raise SetupError("create cgroup", "already exists", path=path)
        task = V2TaskCgroup(path)
        try:
            swap_accounting = limits.memory is not None and os.path.exists(f"{path}/memory.swap.max")
            for file, value in v2_files(limits, swap_accounting).items():
                write(f"{path}/{file}", value)
        except BaseException:
            task.remove()
            raise
        return task

    def _parent(self, parent: str | None) -> tuple[str, frozenset[str]]:
        """The directory task cgroups go in, set up once: controllers enabled top-down."""
        key = parent or ""
        if key in self._ready and (parent is not None or os.path.isdir(self._lxrun_dir())):
            return f"{self.mount}{parent}" if parent else self._lxrun_dir(), self._ready[key]
        if parent is not None:
            path = f"{self.mount}{parent}"
            if not os.path.isdir(path):
                raise SpecError("cgroup_parent", "does not exist", path=parent, hint=f"create {path} first")
            enabled = self._enable(path)
        else:
            own_dir = f"{self.mount}{self.own.rstrip('/')}"
            self._enable(own_dir)
            path = self._lxrun_dir()
            make_dir(path)
            enabled = self._enable(path)
        self._ready[key] = enabled
        return path, enabled

    def parent_dirs(self) -> list[str]:
        return [self._lxrun_dir()]

    def own_cgroup(self) -> V2TaskCgroup:
        return V2TaskCgroup(f"{self.mount}{self.own.rstrip('/')}")

    def find(self, name: str, parent: str | None = None) -> V2TaskCgroup | None:
        path = f"{self.mount}{parent}/{name}" if parent else f"{self._lxrun_dir()}/{name}"
        return V2TaskCgroup(path) if os.path.isdir(path) else None

    def _lxrun_dir(self) -> str:
        return f"{self.mount}{self.own.rstrip('/')}/lxrun"

    def _enable(self, path: str) -> frozenset[str]:
        """Enable in `path`'s subtree_control the controllers we use that it has; returns those enabled."""
        available = set(read_text(f"{path}/cgroup.controllers").split())
        enabled = set(read_text(f"{path}/cgroup.subtree_control").split())
        missing = [c for c in WANTED if c in available and c not in enabled]
        if missing:
            try:
                write(f"{path}/cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            except SetupError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                # No internal processes: move them into a leaf, then try again.
                self._move_processes_to_leaf(path)
                write(f"{path}/cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            enabled.update(missing)
        return frozenset(c for c in enabled if c in WANTED)

    def _move_processes_to_leaf(self, path: str) -> None:
        """Empty the delegated cgroup into its leaf `lxrun-runner` (ourselves first; forks may race)."""
        if path == self.mount:
            raise HostUnsupported("cgroup", "won't reorganise the root cgroup", path=path)
        leaf = f"{path}/{RUNNER_LEAF}"
        make_dir(leaf)
        write(f"{leaf}/cgroup.procs", str(os.getpid()))
        for _ in range(MOVE_ATTEMPTS):
            pids = read_text(f"{path}/cgroup.procs").split()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(SetupError):  # it may have exited meanwhile
                    write(f"{leaf}/cgroup.procs", pid)
        raise HostUnsupported(
            "cgroup",
            f"{path} keeps gaining processes, so controllers can't be enabled below it",
            hint="run lxrun in a cgroup of its own, e.g. a systemd service with Delegate=yes",
        )
