"""What every cgroup manager offers, the usage record, and the file helpers they share."""

from __future__ import annotations

import contextlib
import errno
import os
import time

from lxrun.errors import HostUnsupported, SetupError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from lxrun.spec import Limits


FREEZE_TIMEOUT = 2.0  # seconds for every process to reach the freezer (a process in a D state may not)
REMOVE_TIMEOUT = 2.0  # seconds to wait for a cgroup to become removable (processes still exiting)
KILL_TIMEOUT = 5.0


class Usage(Record):
    """What a task used and whether the kernel OOM-killed inside it; None where the kernel can't tell."""

    __slots__ = ("cpu_system", "cpu_user", "oom_killed", "peak_memory", "pids_peak")
    oom_killed: bool
    peak_memory: int | None
    cpu_user: float | None
    cpu_system: float | None
    pids_peak: int | None

    def __init__(
        self,
        oom_killed: bool = False,
        peak_memory: int | None = None,
        cpu_user: float | None = None,
        cpu_system: float | None = None,
        pids_peak: int | None = None,
    ) -> None:
        super().__init__(
            oom_killed=oom_killed,
            peak_memory=peak_memory,
            cpu_user=cpu_user,
            cpu_system=cpu_system,
            pids_peak=pids_peak,
        )

    def since(self, before: Usage) -> Usage:
        """This usage less what `before` counted (CPU time; peaks and the OOM flag are the cgroup's own)."""

        def less(now: float | None, then: float | None) -> float | None:
            return None if now is None else max(0.0, now - (then or 0.0))

        cpu_user, cpu_system = less(self.cpu_user, before.cpu_user), less(self.cpu_system, before.cpu_system)
        return self.replace(cpu_user=cpu_user, cpu_system=cpu_system)


NO_USAGE = Usage()


class CgroupView(Record):
    """What a task sees of its own cgroup at /sys/fs/cgroup, mounted read-only inside its cgroup
    namespace (so the root of each mount is the task's cgroup): one cgroup2 mount (`unified`), or a
    tmpfs holding one mount per v1 hierarchy the task is in, `hierarchies` (directory name -> the
    hierarchy's mount options, its controllers), with `links` (name -> directory) for co-mounted
    ones (cpu -> cpu,cpuacct) as the host has them."""

    __slots__ = ("hierarchies", "links", "unified")
    unified: bool
    hierarchies: dict[str, str]
    links: dict[str, str]

    def __init__(
        self, unified: bool, hierarchies: dict[str, str] | None = None, links: dict[str, str] | None = None
    ) -> None:
        super().__init__(unified=unified, hierarchies=hierarchies or {}, links=links or {})

    def key(self) -> tuple[object, ...]:
        """Equal for views that mount alike (a cheap hashable stand-in for the view)."""
        return self.unified, tuple(self.hierarchies.items()), tuple(self.links.items())


class TaskCgroup:
    """One task's cgroup (a directory per hierarchy). As a context manager it kills everything left in it
    and removes it on the way out, on every path."""

    def __init__(self, dirs: dict[str, str]) -> None:
        self.dirs = dirs  # hierarchy name -> the task's directory in it

    def view(self) -> CgroupView | None:
        """What the task is to see at /sys/fs/cgroup; None: nothing."""
        return None

    def join_files(self) -> list[str]:
        """The files the child writes "0" to before exec, one per hierarchy."""
        return [f"{path}/cgroup.procs" for path in self.dirs.values()]

    def birth_dir(self) -> str | None:
        """The cgroup2 directory a child can be cloned straight into (CLONE_INTO_CGROUP), if any."""
        return None

    def usage(self) -> Usage:
        return NO_USAGE

    def current_memory(self) -> int | None:
        """Bytes in use now (for `lxrun ps`)."""
        return None

    def restart_accounting(self) -> Usage:
        """Start counting afresh for a task handed to a prepared sandbox: reset what the kernel lets us
        reset; returns what must be subtracted from the task's usage() for the rest (Usage.since)."""
        return NO_USAGE

    def retune(self, limits: Limits, made_with: Limits) -> bool:
        """Change limits from `made_with` (what the cgroup was created with) to `limits`; False, changing
        nothing, where they need other files (a limit set in one and not the other)."""
        return limits == made_with

    def apply(self, limits: Limits) -> None:
        """Write the files of the limits set in `limits` (an OCI `update`), the others left as they are;
        SpecError naming the field where the task has no cgroup of its own for it."""
        raise HostUnsupported("cgroup", "this host gives lxrun no cgroups to change", hint="run on cgroup v1 or v2")

    def bounds(self) -> tuple[int | None, int | None]:
        """The memory limit (bytes) and the pids limit in force now; None: no limit."""
        return None, None

    def freezer(self) -> tuple[str, str] | None:
        """The file that tells whether the cgroup is frozen, and what it reads then; None: no freezer."""
        return None

    def freeze(self, frozen: bool) -> None:
        """Freeze (wait until every process is) or thaw every process in the cgroup."""
        raise HostUnsupported("freeze", "this cgroup has no freezer", hint="mount the freezer controller (v1)")

    def frozen(self) -> bool:
        found = self.freezer()
        if found is None:
            return False
        try:
            return read_text(found[0]).strip() == found[1]
        except FileNotFoundError:
            return False

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup, descendants that left the task's session included."""

    def signal_all(self, sig: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def pids(self) -> list[int]:
        """The processes in the cgroup. The child joins every hierarchy before it execs, so one tells all."""
        for path in self.dirs.values():
            return [int(pid) for pid in read_text(f"{path}/cgroup.procs").split()]
        return []

    def remove(self) -> None:
        """rmdir every directory, retrying while the kernel still counts exiting processes (EBUSY)."""
        deadline = time.monotonic() + REMOVE_TIMEOUT
        for path in self.dirs.values():
            rmdir_patiently(path, deadline)

    def __enter__(self) -> TaskCgroup:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill_all()
        self.remove()


class CgroupManager:
    """Creates task cgroups. `version` is "v1", "v2" or "none".

    `parent` is a cgroup path (as in /proc/self/cgroup, e.g. /runners/a) that must already exist in
    every hierarchy used; without it, task cgroups go in `lxrun/` below the cgroup lxrun runs in."""

    version = "none"

    def create(self, name: str, limits: Limits, parent: str | None = None) -> TaskCgroup:
        raise NotImplementedError

    def find(self, name: str, parent: str | None = None) -> TaskCgroup | None:
        """The task cgroup `name` if it (still) exists, e.g. for `lxrun gc` after a runner died."""
        return None

    def make_parent(self, parent: str) -> bool:
        """Make the cgroup path `parent` in every hierarchy, each missing level whole before it has its
        name (an OCI engine's cgroupsPath directory, e.g. docker's /docker); False where this manager
        can't (it is then not there)."""
        return False

    def own_cgroup(self) -> TaskCgroup | None:
        """The cgroup of the process this manager was detected for, to read its usage (see `detect`)."""
        return None

    def parent_dirs(self) -> list[str]:
        """The `lxrun/` directories task cgroups go in by default (they outlive tasks, like docker's)."""
        return []

    # Leaves below a parent that go with it when no process is in them (v1's shared leaf).
    idle_leaves: tuple[str, ...] = ()

    def idle_parents(self) -> list[str]:
        """The `lxrun/` parents remove_idle_parents would remove now (what `gc --dry-run` lists): no
        process in them, no child cgroup but idle leaves of `idle_leaves`."""
        return [path for path in self.parent_dirs() if _idle(path, self.idle_leaves)]

    def remove_idle_parents(self) -> list[str]:
        """Remove the `lxrun/` parents no task uses any more; returns those removed. Safe while tasks run."""
        removed = []
        for path in self.parent_dirs():
            try:
                os.rmdir(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    continue
                raise SetupError.from_errno("remove cgroup", exc.errno or errno.EIO, path) from exc
            removed.append(path)
        return removed


def _idle(path: str, leaves: tuple[str, ...]) -> bool:
    try:
        with os.scandir(path) as entries:
            children = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
        return all(name in leaves and _idle(f"{path}/{name}", ()) for name in children) and not _procs(path)
    except FileNotFoundError:
        return False


def _procs(path: str) -> str:
    with open(f"{path}/cgroup.procs") as procs:
        return procs.read().strip()


def rmdir_patiently(path: str, deadline: float) -> None:
    """rmdir a cgroup (gone already is fine), retrying until `deadline` while the kernel still counts
    processes that are exiting (EBUSY)."""
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise SetupError.from_errno("remove cgroup", exc.errno or errno.EIO, path) from exc
            time.sleep(0.001)


# Cgroup files are read and written through bare descriptors: a task reads and writes a dozen, and
# Python's buffered text files cost a few microseconds and two fstat calls more each.
READ_CHUNK = 65536


def read_text(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, READ_CHUNK)]
        while len(chunks[-1]) == READ_CHUNK:  # a long cgroup.procs
            chunks.append(os.read(fd, READ_CHUNK))
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read_int(path: str) -> int | None:
    """An integer cgroup file, or None if this kernel lacks it."""
    try:
        return int(read_text(path).split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def read_keyed(path: str) -> dict[str, int]:
    """A flat-keyed file ("key value" lines, e.g. memory.events, cpu.stat); empty if missing."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def write(path: str, value: str) -> None:
    data = value.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)  # creates only on fake trees
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.EIO, "short write", path)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SetupError.from_errno("cgroup", exc.errno or errno.EIO, f"{path} <- {value}") from exc


def make_dir(path: str) -> bool:
    """mkdir; False if it already existed."""
    try:
        os.mkdir(path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise SetupError.from_errno("create cgroup", exc.errno or errno.EIO, path) from exc
    return True


def wait_until(done: Callable[[], bool], step: str, path: str, timeout: float = FREEZE_TIMEOUT) -> None:
    """Poll until `done()` (a cgroup file's state reached); SetupError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not done():
        if time.monotonic() > deadline:
            raise SetupError(step, f"not reached in {timeout:g} s", path=path)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def read_limit(path: str) -> int | None:
    """A limit file ("max", or v1's unlimited numbers past 2**62) as bytes or a count; None: no limit."""
    value = read_int(path)
    return value if value is not None and value < 2**62 else None


def wait_until_empty(task: TaskCgroup, kill: Callable[[], None]) -> None:
    """Repeat `kill` until no process is left (forks may race the first round)."""
    deadline = time.monotonic() + KILL_TIMEOUT
    delay = 0.0005
    while task.pids():
        if time.monotonic() > deadline:
            survivors = task.pids()
            raise SetupError(
                "kill cgroup", f"processes {survivors} survived SIGKILL", path=next(iter(task.dirs.values()))
            )
        kill()
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
