"""The cgroup directories a task of the lxc backend lives in: created, read and removed here, one tree per task.

    <own cgroup>/lxrun-lxc/<task-id>/task       ours: usage is read here after the task (hierarchical)
    <own cgroup>/lxrun-lxc/<task-id>/task/ct    LXC's container cgroup, with the limits; LXC removes it
    <own cgroup>/lxrun-lxc/<task-id>/monitor    LXC's monitor; it moves to .../pivot before it exits

`<own cgroup>` is the cgroup this process is in, in every hierarchy (LXC with lxc.cgroup.relative = 1
nests under the same one), so nothing lands at the top of a hierarchy and nothing outside our
`<task-id>` directory is ever touched. The tree goes as a whole when the task has ended.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time

from lxrun.cgroups.base import Usage, rmdir_patiently
from lxrun.cgroups.v1 import inherit_cpuset
from lxrun.cgroups.v2 import shares_to_weight
from lxrun.errors import SetupError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

TOP = "lxrun-lxc"
V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids")
CREATE_ATTEMPTS = 10
REMOVE_PATIENCE = 2.0  # seconds: a cgroup stays busy briefly after its last process was reaped


class Hierarchy(Record):
    """One mounted cgroup hierarchy and the cgroup this process is in there."""

    __slots__ = ("controllers", "mount", "own", "unified")
    mount: str
    own: str
    controllers: frozenset[str]
    unified: bool

    def __init__(self, mount: str, own: str, controllers: frozenset[str], unified: bool) -> None:
        super().__init__(mount=mount, own=own, controllers=controllers, unified=unified)

    def path(self, relative: str) -> str:
        return f"{self.mount}{self.own.rstrip('/')}/{relative}"


def parse_hierarchies(proc_cgroup: str, mountinfo: str) -> list[Hierarchy]:
    """/proc/self/cgroup and /proc/self/mountinfo -> the hierarchies this process is in, where mounted."""
    mounts: list[tuple[str, str, str, frozenset[str]]] = []  # (fstype, root, mount point, super options)
    for line in mountinfo.splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], frozenset(fields[separator + 3].split(","))
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((fstype, fields[3], fields[4].replace("\\040", " "), options))
    found = []
    for line in proc_cgroup.splitlines():
        _, names, own = line.split(":", 2)
        wanted = frozenset(names.split(",")) if names else frozenset()
        for fstype, root, mount_point, options in mounts:
            unified = fstype == "cgroup2"
            if (unified and not names) or (not unified and wanted and wanted <= options):
                if root != "/" and not own.startswith(root):
                    continue
                inside = own[len(root) :] if root != "/" else own
                controllers = _v2_controllers(mount_point, inside) if unified else wanted
                found.append(Hierarchy(mount_point, inside or "/", controllers, unified))
                break
    return found


def _v2_controllers(mount_point: str, own: str) -> frozenset[str]:
    try:
        with open(f"{mount_point}{own.rstrip('/')}/cgroup.controllers") as file:
            return frozenset(file.read().split())
    except OSError:
        return frozenset()


def own_hierarchies() -> list[Hierarchy]:
    with open("/proc/self/cgroup") as cgroup, open("/proc/self/mountinfo") as mountinfo:
        return parse_hierarchies(cgroup.read(), mountinfo.read())


def undelegated(hierarchies: list[Hierarchy]) -> list[str]:
    """On a v2-only host: the controllers our own cgroup does not pass on to children (a cgroup with
    processes in it can't, so lxrun must run in a leaf of a delegated subtree). Empty where all is well."""
    if legacy_memory(hierarchies) is not None:
        return []
    unified = next((h for h in hierarchies if h.unified), None)
    if unified is None:
        return list(V2_CONTROLLERS)
    try:
        with open(unified.path("cgroup.subtree_control")) as file:
            enabled = set(file.read().split())
    except OSError:
        enabled = set()
    return [name for name in ("cpu", "memory", "pids") if name not in enabled]


def legacy_memory(hierarchies: list[Hierarchy]) -> Hierarchy | None:
    """The v1 memory hierarchy, if limits go through v1 (legacy or hybrid hosts)."""
    return next((h for h in hierarchies if not h.unified and "memory" in h.controllers), None)


class TaskCgroups:
    """The tree of one task (see the module docstring); `relative` paths are what LXC's config takes."""

    def __init__(self, task_id: str, hierarchies: list[Hierarchy], top: str = TOP) -> None:
        self.hierarchies = hierarchies
        self.top = top
        self.relative = f"{top}/{task_id}"
        self.container = f"{self.relative}/task/ct"
        self.monitor = f"{self.relative}/monitor"
        self.pivot = f"{self.relative}/pivot"

    def find(self, controller: str) -> Hierarchy | None:
        """Where `controller` is accounted: its v1 hierarchy if it has one, else the unified one."""
        legacy = next((h for h in self.hierarchies if not h.unified and controller in h.controllers), None)
        return legacy or next((h for h in self.hierarchies if h.unified and controller in h.controllers), None)

    @contextlib.contextmanager
    def created(self, cpu_shares: int | None = None) -> Iterator[TaskCgroups]:
        """Create `<task-id>/task` in every hierarchy (while it exists, the shared top can't go from under
        the runtime's own mkdir -p); on the way out kill what is still in it and remove the whole tree.

        CPU shares weigh a cgroup against its siblings only, and the siblings of one task's cgroups
        are other tasks' `<task-id>` directories: so the task's weight is set there as well."""
        try:
            for hierarchy in self.hierarchies:
                self._create(hierarchy)
            if cpu_shares is not None:
                self._weigh(cpu_shares)
            yield self
        finally:
            self.kill_all()  # the backend's own teardown may have failed to end the container
            self.remove()

    def _create(self, hierarchy: Hierarchy) -> None:
        top = hierarchy.path(self.top)
        # The shared top goes when its last task ends: if that happens between our two mkdirs, make it again.
        for attempt in range(CREATE_ATTEMPTS):
            try:
                self._mkdir(hierarchy, top, exist_ok=True)  # filling in its cpuset may find it gone, too
                self._mkdir(hierarchy, hierarchy.path(self.relative), exist_ok=False)
                break
            except FileNotFoundError:
                if attempt == CREATE_ATTEMPTS - 1:
                    raise SetupError.from_errno("cgroup", errno.ENOENT, top) from None
        self._mkdir(hierarchy, hierarchy.path(f"{self.relative}/task"), exist_ok=False)

    @staticmethod
    def _mkdir(hierarchy: Hierarchy, path: str, exist_ok: bool) -> None:
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            if not exist_ok:
                raise SetupError("cgroup", "already exists", path=path) from None
            # Another task made it a moment ago, and may not have filled its cpuset yet: we do it too.
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise SetupError.from_errno("cgroup", exc.errno or errno.EIO, path) from None
        if "cpuset" in hierarchy.controllers and not hierarchy.unified:
            _inherit_cpuset(path)
        if hierarchy.unified:
            _delegate(path, hierarchy.controllers)

    def _weigh(self, cpu_shares: int) -> None:
        cpu = self.find("cpu")
        if cpu is None:
            return
        name, value = ("cpu.weight", shares_to_weight(cpu_shares)) if cpu.unified else ("cpu.shares", cpu_shares)
        with open(cpu.path(f"{self.relative}/{name}"), "w") as file:
            file.write(str(value))

    def exists(self) -> bool:
        return any(os.path.isdir(h.path(self.relative)) for h in self.hierarchies)

    def kill_all(self) -> None:
        """SIGKILL every process left in the task's tree, until none is (after a runner died mid-task)."""
        deadline = time.monotonic() + REMOVE_PATIENCE
        while time.monotonic() < deadline:
            pids: set[int] = set()
            for hierarchy in self.hierarchies:
                for directory, _, _ in os.walk(hierarchy.path(self.relative)):
                    with contextlib.suppress(FileNotFoundError), open(f"{directory}/cgroup.procs") as procs:
                        pids.update(int(pid) for pid in procs.read().split())
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
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
        """Read from `<task-id>/task`, whose figures include the container's (cgroups are hierarchical).

        v1 counts OOM kills per cgroup only, and LXC removes the container's cgroup itself: there the
        count comes from `oom_kill_file`, the copy LXC's stop hook made just before (see lxc_config)."""
        task = f"{self.relative}/task"
        cpu_user = cpu_system = None
        cpu = self.find("cpuacct") or self.find("cpu")
        if cpu is not None and cpu.unified:
            stat = _keyed(cpu.path(f"{task}/cpu.stat"))
            cpu_user, cpu_system = stat.get("user_usec", 0) / 1e6, stat.get("system_usec", 0) / 1e6
        elif cpu is not None:
            cpu_user = _number(cpu.path(f"{task}/cpuacct.usage_user")) / 1e9
            cpu_system = _number(cpu.path(f"{task}/cpuacct.usage_sys")) / 1e9
        peak_memory, oom_killed = None, False
        memory = self.find("memory")
        if memory is not None and memory.unified:
            peak_memory = _optional(memory.path(f"{task}/memory.peak"))
            oom_killed = _keyed(memory.path(f"{task}/memory.events")).get("oom_kill", 0) > 0
        elif memory is not None:
            peak_memory = _number(memory.path(f"{task}/memory.max_usage_in_bytes"))
            oom_killed = oom_kill_file is not None and _keyed(oom_kill_file).get("oom_kill", 0) > 0
        pids = self.find("pids")
        pids_peak = _optional(pids.path(f"{task}/pids.peak")) if pids is not None else None
        return Usage(
            oom_killed=oom_killed,
            peak_memory=peak_memory,
            cpu_user=cpu_user,
            cpu_system=cpu_system,
            pids_peak=pids_peak,
        )


def _inherit_cpuset(path: str) -> None:
    """The parent's cpus and mems (a new v1 cpuset has none), and the cgroups LXC creates below copy
    ours (clone_children)."""
    inherit_cpuset(path)
    with open(f"{path}/cgroup.clone_children", "w") as clone:
        clone.write("1")


def _delegate(path: str, controllers: frozenset[str]) -> None:
    """v2: make the controllers LXC will set limits with available in the children of `path`."""
    wanted = " ".join(f"+{name}" for name in V2_CONTROLLERS if name in controllers)
    if not wanted:
        return
    try:
        with open(f"{path}/cgroup.subtree_control", "w") as file:
            file.write(wanted)
    except OSError as exc:
        raise SetupError.from_errno(
            "cgroup", exc.errno or errno.EIO, path, hint="lxrun's own cgroup must delegate cpu, memory and pids"
        ) from None


def _keyed(path: str) -> dict[str, int]:
    """A flat-keyed cgroup file ("key value" lines); empty if it is missing."""
    try:
        with open(path) as file:
            pairs = (line.split() for line in file)
            return {fields[0]: int(fields[1]) for fields in pairs if len(fields) == 2}
    except FileNotFoundError:
        return {}


def _number(path: str) -> int:
    with open(path) as file:
        return int(file.read())


def _optional(path: str) -> int | None:
    try:
        return _number(path)
    except FileNotFoundError:
        return None
